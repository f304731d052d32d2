// Package devstack provides the zero-setup defaults of `make run`: embedded
// stand-ins for PostgreSQL, Redis, Kafka and S3, each used only when its
// setting is empty and each replaced by setting one environment variable. The
// Kafka and S3 stand-ins also run as their own processes (cmd/kafka-broker,
// cmd/s3-server) for tests and CI.
package devstack
