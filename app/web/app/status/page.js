// Rendered on every request by the server function, which reads API_URL from its environment.
export const dynamic = "force-dynamic";

async function apiStatus(apiUrl) {
  if (!apiUrl) {
    return { ok: false, detail: "API_URL is not set for this stage" };
  }
  try {
    const response = await fetch(new URL("/health", apiUrl), {
      cache: "no-store",
      signal: AbortSignal.timeout(3000),
    });
    const body = response.ok ? await response.json().catch(() => null) : null;
    return {
      ok: response.ok && body?.status === "ok",
      detail: `${response.status} ${response.statusText}`,
      body,
    };
  } catch (error) {
    return { ok: false, detail: String(error) };
  }
}

export default async function Status() {
  const apiUrl = process.env.API_URL;
  const status = await apiStatus(apiUrl);
  return (
    <main>
      <h1>API status</h1>
      <p>API: {apiUrl ?? "none"}</p>
      <p>
        {status.ok ? "healthy" : "unhealthy"}: {status.detail}
      </p>
      {status.body ? (
        <dl>
          <dt>Status</dt>
          <dd>{status.body.status}</dd>
          <dt>Region</dt>
          <dd>{status.body.region ?? "unknown"}</dd>
          <dt>Checked at</dt>
          <dd>{status.body.time}</dd>
        </dl>
      ) : null}
      <p>Rendered at {new Date().toISOString()}</p>
    </main>
  );
}
