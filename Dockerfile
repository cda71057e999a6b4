# Image of the corral host with every component built in.
# Built by compose.yaml; the host binary and the .wasm files come from the
# same source tree, so the image is what `cargo up` runs locally.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN rustup target add wasm32-wasip2 \
 && cargo build --release -p corral \
 && cd components && cargo build --release --target wasm32-wasip2

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 corral \
 && mkdir -p /var/lib/corral /var/log/service /var/log/client /var/log/corral \
 && chown corral /var/lib/corral /var/log/service /var/log/client /var/log/corral
COPY --from=build /src/target/release/corral /usr/local/bin/corral
COPY --from=build /src/components/target/wasm32-wasip2/release/*.wasm /opt/corral/components/
COPY deploy/corral.compose.toml /etc/corral/corral.toml
USER corral
EXPOSE 8080
ENV CORRAL_CONFIG=/etc/corral/corral.toml
HEALTHCHECK --interval=5s --timeout=3s --retries=10 CMD curl -fsS http://127.0.0.1:8080/status || exit 1
ENTRYPOINT ["corral"]
CMD ["up"]
