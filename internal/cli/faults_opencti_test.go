//go:build faults

package cli

import "testing"

// The OpenCTI scenarios are listed in the table but not built yet: the
// netproxy (for RabbitMQ through fakeocti.Config.AMQPPublic, and for
// PostgreSQL) and the book keeping shape are ready for them.
func faultOctiSIGKILL(t *testing.T, m faultMode, f *figure)  { octiNotBuilt(t, f) }
func faultOctiVTErrors(t *testing.T, m faultMode, f *figure) { octiNotBuilt(t, f) }
func faultOctiRabbitMQ(t *testing.T, m faultMode, f *figure) { octiNotBuilt(t, f) }
func faultOctiPostgres(t *testing.T, m faultMode, f *figure) { octiNotBuilt(t, f) }

func octiNotBuilt(t *testing.T, f *figure) {
	f.NotRun = "not built yet"
	t.Skip(f.NotRun)
}
