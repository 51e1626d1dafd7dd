package opencti

import (
	"errors"
)

// checkSettings refuses, at start-up, the settings vtconnector cannot
// honour, so that none is accepted and ignored.
func (c *Connector) checkSettings() error {
	var errs []error
	if c.cfg.ValidateBeforeImport {
		errs = append(errs, errors.New("opencti: CONNECTOR_VALIDATE_BEFORE_IMPORT=true is not supported (pycti uploads each bundle to a workbench or a draft for validation; vtconnector imports directly): set it to false"))
	}
	return errors.Join(errs...)
}
