// Package packaging holds the checks of the .deb and .rpm packages that
// `make packages` builds with nfpm from nfpm.yaml: the files, their modes and
// owners, the configuration files kept on upgrade, the maintainer scripts,
// and (as root, with dpkg) what installing the .deb creates. The packages are
// read with the standard library only, so the checks run where neither dpkg
// nor rpm is installed. It has no code outside its tests.
package packaging

import (
	"io/fs"
)

// entry is one path of a package.
type entry struct {
	mode   fs.FileMode // type and permission bits
	owner  string
	group  string
	config bool   // a deb conffile, an rpm %config(noreplace)
	data   []byte // a regular file's content
}

// archive is what a package holds, read back from its bytes.
type archive struct {
	name, version, arch string
	entries             map[string]entry  // by absolute path, without a trailing slash
	scripts             map[string]string // preinstall, postinstall, preremove, postremove
}
