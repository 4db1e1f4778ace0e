# syntax=docker/dockerfile:1
# Jarvis as an image: `docker build -t jarvis .`, then
#   docker run -p 8000:8000 -e JARVIS_API_KEYS=app=<a long random key> -v jarvis-data:/data jarvis
# The build stage compiles TypeScript with the dev dependencies; the runtime stage holds only the production
# dependencies, the compiled dist/ and the console's page files, and runs as the node image's unprivileged user.
# test/image.test.ts does the runtime stage's install as this file says (its `npm ci` line and its COPYs) in a clean
# folder and starts Jarvis from it: keep what the runtime stage needs in COPY and RUN npm ci lines.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --prefer-offline
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund --prefer-offline
# dist/ holds the server and the embedded ledger's worker (dist/ledger/stores/embedded-worker.js); the console's
# page script and stylesheet are read from console/ next to dist/ (src/http/routes/console.ts), its libraries
# (preact, htm, uPlot) from node_modules.
COPY --from=build /app/dist ./dist
COPY console ./console
RUN mkdir -p /data && chown node:node /data

# Listen on every interface (Jarvis refuses to without API keys: set JARVIS_API_KEYS or JARVIS_KEYS_FILE).
# The embedded ledger (ledger.sqlite) goes to the /data volume; use JARVIS_DATABASE_URL for a shared ledger.
# Logs go to stdout (the container's log); the log file, which Jarvis always writes too, goes to /dev/null.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    JARVIS_DATA_DIR=/data \
    JARVIS_LOG_FILE=/dev/null \
    JARVIS_LOG_FORMAT=json
VOLUME /data
EXPOSE 8000
USER node

# No curl in a slim image: Node's own fetch. /healthz answers 200 while the process serves.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself as PID 1 receives SIGTERM and drains (JARVIS_SHUTDOWN_GRACE_MS); no npm in between to swallow it.
CMD ["node", "dist/main.js"]
