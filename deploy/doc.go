// Package deploy holds the production deployment files (Dockerfile,
// Temporal dynamic config) and the tests that validate docker-compose.yml
// without a Docker engine. It has no code of its own.
package deploy
