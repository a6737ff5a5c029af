// Package deploy holds the compose deployment (compose.yaml, Dockerfile,
// .env.example, observability configs) and the tests that check it without a
// Docker engine: the compose file loads with the official loader and meets the
// deployment's rules, and the Dockerfile's build lines build the binaries
// compose runs.
package deploy
