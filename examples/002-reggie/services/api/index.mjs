// The API route (Hono + Drizzle in the seed): one Lambda behind every path of ReggieApi.
// The real app verifies Clerk sessions with the linked ClerkSecretKey and reads its links
// with `import { Resource } from "sst"`; this stand-in only answers.
export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ path: event.rawPath }),
});
