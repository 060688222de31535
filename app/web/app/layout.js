import SiteBadge from "./site-badge";

export const metadata = {
  title: "harbor",
  description: "A Next.js site deployed by harbor through OpenNext",
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "system-ui, sans-serif", margin: "2rem auto", maxWidth: "40rem" }}>
        <nav>
          <a href="/">Home</a> · <a href="/status">API status</a> · <a href="/hello">Say hello</a>
        </nav>
        {children}
        <SiteBadge />
      </body>
    </html>
  );
}
