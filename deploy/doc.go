// Package deploy checks the container deployment at the repository root: compose.yaml, the
// Dockerfile and their agreement with the stage programs and monitoring/prometheus.yml.
//
// It has no code of its own. Its tests load compose.yaml with compose-go, the library that
// the Docker Compose CLI uses, so they run without Docker. scripts/compose-smoke.sh runs the
// same files for real on a machine with Docker.
package deploy
