//go:build faults

package cli

import "testing"

func faultOctiSIGKILL(t *testing.T, m faultMode, f *figure)  { t.Skip("todo") }
func faultOctiVTErrors(t *testing.T, m faultMode, f *figure) { t.Skip("todo") }
func faultOctiRabbitMQ(t *testing.T, m faultMode, f *figure) { t.Skip("todo") }
func faultOctiPostgres(t *testing.T, m faultMode, f *figure) { t.Skip("todo") }
