"use client";

// NEXT_PUBLIC_* values are inlined into the browser bundle when the site is built; the
// Nextjs component passes them to the build from __main__.py.
export default function SiteBadge() {
  return <p className="harbor-site-badge">Site: {process.env.NEXT_PUBLIC_HARBOR_SITE ?? "unnamed"}</p>;
}
