import Image from "next/image";

// Rendered once at build time and served from S3 through CloudFront.
export const dynamic = "force-static";

export default function Home() {
  return (
    <main>
      <h1>harbor</h1>
      <p>This page is static: it was rendered when the site was built.</p>
      <Image src="/harbor.png" alt="A harbor at dusk" width={320} height={180} priority />
    </main>
  );
}
