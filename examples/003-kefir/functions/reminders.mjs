// The daily reminders run: items under REMINDER#<day> in GSI1 are today's reminders; each
// carries a TTL so DynamoDB drops it once it has been sent.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));

export const handler = async () => {
  const day = new Date().toISOString().slice(0, 10);
  const result = await db.send(new QueryCommand({
    TableName: process.env.TABLE_NAME,
    IndexName: "GSI1",
    KeyConditionExpression: "GSI1PK = :pk",
    ExpressionAttributeValues: { ":pk": `REMINDER#${day}` },
  }));
  const due = result.Items ?? [];
  console.log(JSON.stringify({ level: "info", action: "sendReminders", day, count: due.length }));
  return { sent: due.length };
};
