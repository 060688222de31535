// GET /public/b/{batchId}: a batch's public page data, no sign-in (the route has no authorizer).
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));

export const handler = async (event) => {
  const batchId = event.pathParameters?.batchId ?? "";
  const result = await db.send(new QueryCommand({
    TableName: process.env.TABLE_NAME,
    IndexName: "GSI1",
    KeyConditionExpression: "GSI1PK = :pk",
    ExpressionAttributeValues: { ":pk": `BATCH#${batchId}` },
    Limit: 1,
  }));
  const batch = result.Items?.[0];
  if (!batch) {
    return { statusCode: 404, body: JSON.stringify({ message: "no such batch" }) };
  }
  return {
    statusCode: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ batchId: batch.batchId, name: batch.name, startedAt: batch.startedAt }),
  };
};
