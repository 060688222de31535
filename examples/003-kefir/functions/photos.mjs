// POST /batches/{batchId}/photos: a presigned PUT URL for one photo in the private bucket
// (the bucket's CORS lets the app upload straight to S3).
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { randomUUID } from "node:crypto";

const s3 = new S3Client({});

export const handler = async (event) => {
  const userId = event.requestContext.authorizer.jwt.claims.sub;
  const key = `${userId}/${event.pathParameters.batchId}/${randomUUID()}.jpg`;
  const url = await getSignedUrl(
    s3,
    new PutObjectCommand({ Bucket: process.env.BUCKET_NAME, Key: key, ContentType: "image/jpeg" }),
    { expiresIn: 900 },
  );
  return {
    statusCode: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key, url }),
  };
};
