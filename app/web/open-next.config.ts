// OpenNext settings for the harbor sample site (plain object: valid JavaScript too).
const config = {
  // Stream server responses (React Suspense boundaries flush early); the Nextjs component
  // sees `streaming: true` in the output and gives the server a RESPONSE_STREAM URL.
  default: {
    override: { wrapper: "aws-lambda-streaming" },
  },
  imageOptimization: {
    install: {
      // The image function runs on arm64 Lambda: install sharp's linux-arm64 binary from npm,
      // whatever machine builds the site. npm 10+ reads --cpu; --arch is for older npm.
      packages: ["sharp@0.35.5"],
      arch: "arm64",
      os: "linux",
      libc: "glibc",
      nodeVersion: "20",
      additionalArgs: "--cpu=arm64",
    },
  },
};

export default config;
