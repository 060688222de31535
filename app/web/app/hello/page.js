import { redirect } from "next/navigation";

// A server action: the form posts to the server function, which greets by redirecting.
// It works without JavaScript too (a plain multipart form POST).
export const dynamic = "force-dynamic";

async function greet(formData) {
  "use server";
  const name = String(formData.get("name") ?? "").trim().slice(0, 40) || "stranger";
  redirect(`/hello?name=${encodeURIComponent(name)}`);
}

export default async function Hello({ searchParams }) {
  const { name } = await searchParams;
  return (
    <main>
      <h1>Say hello</h1>
      {name ? <p id="greeting">Hello, {name}!</p> : null}
      <form action={greet}>
        <label>
          Name <input name="name" maxLength={40} />
        </label>
        <button type="submit">Send</button>
      </form>
    </main>
  );
}
