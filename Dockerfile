# Build a static binary, then ship it alone in a minimal image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/mercury ./cmd/mercury

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mercury /usr/local/bin/mercury
USER nonroot:nonroot
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/mercury"]
# Inside a container the broker must listen on every interface; publishing
# the port (docker run -p) is the operator's choice, so anonymous access is
# allowed here. Mount a config with an auth section to require tokens:
#   docker run -p 3000:3000 -v $PWD/mercury.yaml:/etc/mercury.yaml mercury serve --listen :3000 --config /etc/mercury.yaml
CMD ["serve", "--listen", ":3000", "--allow-anonymous"]
