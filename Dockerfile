# Multi-stage build: dependencies in one stage, a slim runtime running as a non-root user.
FROM oven/bun:1.4.5 AS deps
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production

FROM oven/bun:1.4.5-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production PORT=3000 DATA_DIR=/data
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY drizzle ./drizzle
RUN mkdir -p /data && chown -R bun:bun /data
USER bun
EXPOSE 3000
VOLUME ["/data"]
CMD ["bun", "src/main.ts"]
