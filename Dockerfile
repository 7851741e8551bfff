# syntax=docker/dockerfile:1
# The kedge controller image: `kedge controller` on Node.js 20, non-root, production
# dependencies only. The base image is a build argument because kedge's CI has no registry:
#   docker build -t kedge:0.1.0 .                                  # node:20-bookworm-slim
#   docker build --build-arg NODE_IMAGE=registry.local/node:20 .   # a mirror or local base
# The base must provide node and npm (npm is only used in the build stages).
ARG NODE_IMAGE=node:20-bookworm-slim

# Build stage: compile TypeScript with the dev dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the controller needs no native addon built here (better-sqlite3 is only used
# by kedge node's store-and-forward queue); the runtime stage installs its own copy.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-dashboard.mjs ./scripts/
COPY src ./src
RUN npm run build

# Production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts skips the package's own prepare (a TypeScript build); the native addon is then
# built on its own.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3 \
  && npm cache clean --force

# Runtime: dist/, package.json (for the version) and production node_modules; no npm, no sources.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# A fixed numeric non-root user, as the chart's securityContext (runAsUser 10001) expects; the
# root filesystem can be mounted read-only.
USER 10001:10001
EXPOSE 8883 10250 8080
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["controller"]
