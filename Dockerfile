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
CMD ["serve", "--listen", ":3000"]
