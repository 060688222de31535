// Calls an OpenNext server bundle (streaming wrapper, API Gateway v2 converter) the way a
// Lambda function URL would, with a no-JavaScript form POST of a server action; prints the
// status, location and start of the body as JSON. Usage: node invoke_server_action.mjs BUNDLE ACTION_ID
import { Writable } from "node:stream";
const [bundle, actionId] = process.argv.slice(2);
globalThis.awslambda = { streamifyResponse: (fn) => fn };
const { handler } = await import(`${bundle}/index.mjs`);
const boundary = "----harbor";
const body = [
  `--${boundary}\r\nContent-Disposition: form-data; name="$ACTION_ID_${actionId}"\r\n\r\n\r\n`,
  `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n`,
  `--${boundary}--\r\n`,
].join("");
const event = {
  version: "2.0", routeKey: "$default", rawPath: "/hello", rawQueryString: "",
  headers: {
    host: "site.example", "x-forwarded-host": "site.example", origin: "https://site.example",
    "content-type": `multipart/form-data; boundary=${boundary}`, accept: "text/html",
  },
  requestContext: { http: { method: "POST", path: "/hello", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
    domainName: "site.example", requestId: "r1", stage: "$default", routeKey: "$default", timeEpoch: 0 },
  body: Buffer.from(body).toString("base64"), isBase64Encoded: true,
};
const chunks = [];
const stream = new Writable({ write(chunk, _enc, done) { chunks.push(Buffer.from(chunk)); done(); } });
stream.setContentType = () => {};
const finished = new Promise((resolve) => stream.on("finish", resolve));
await handler(event, stream, {});
await finished;
const all = Buffer.concat(chunks);
const split = all.indexOf(Buffer.alloc(8));
const prelude = JSON.parse(all.subarray(0, split).toString());
console.log(JSON.stringify({ statusCode: prelude.statusCode, location: prelude.headers?.location ?? null,
  body: all.subarray(split + 8).toString().slice(0, 200) }));
process.exit(0);
