// POST /batches and GET /batches: a signed-in producer's kefir batches in the single table.
// The table's name comes from TABLE_NAME, as in the seed; the AWS SDK v3 ships with Node.js 20.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { randomUUID } from "node:crypto";

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));

const json = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

export const handler = async (event) => {
  const userId = event.requestContext.authorizer.jwt.claims.sub;
  if (event.requestContext.http.method === "GET") {
    const result = await db.send(new QueryCommand({
      TableName: process.env.TABLE_NAME,
      KeyConditionExpression: "PK = :pk AND begins_with(SK, :sk)",
      ExpressionAttributeValues: { ":pk": `USER#${userId}`, ":sk": "BATCH#" },
    }));
    return json(200, { batches: result.Items ?? [] });
  }
  const input = JSON.parse(event.body || "{}");
  const batchId = randomUUID();
  const batch = {
    PK: `USER#${userId}`,
    SK: `BATCH#${batchId}`,
    GSI1PK: `BATCH#${batchId}`,  // the public page finds a batch by its id alone
    GSI1SK: `BATCH#${batchId}`,
    batchId,
    name: String(input.name ?? "").slice(0, 200),
    startedAt: new Date().toISOString(),
  };
  await db.send(new PutCommand({ TableName: process.env.TABLE_NAME, Item: batch }));
  return json(201, { batchId });
};
