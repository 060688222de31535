/** @type {import('next').NextConfig} */
const nextConfig = {
  // OpenNext bundles the server from Next's standalone output.
  output: "standalone",
  poweredByHeader: false,
  reactStrictMode: true,
};

export default nextConfig;
