// Package storetest gives tests and benchmarks a PostgreSQL database of
// their own: a fresh schema in the database VTC_TEST_POSTGRES_DSN names,
// dropped when the test ends.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvDSN is the variable naming the test PostgreSQL database.
const EnvDSN = "VTC_TEST_POSTGRES_DSN"

// PostgresDSN creates a schema named prefix_<random> in the database
// EnvDSN names, drops it when t ends, and returns a DSN whose search_path
// points at it. A non-empty password is put in the DSN (a server that
// trusts local connections ignores it; tests use it to check redaction).
// Without EnvDSN, t is skipped.
func PostgresDSN(t testing.TB, prefix, password string) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		t.Skip(EnvDSN + " not set")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("%s_%016x", prefix, rand.Uint64())
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	if password != "" {
		u.User = url.UserPassword(u.User.Username(), password)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
