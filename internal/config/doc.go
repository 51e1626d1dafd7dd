// Package config owns vtconnector's configuration for both fronts: the
// typed settings, their defaults, the validation that reports every problem
// at once, the redacted dump behind `vtconnector config check`, and the
// option tables that docs/CONFIGURATION.md is checked against.
//
// Two loaders keep the original products' names so that deployments are
// drop-in:
//
//   - LoadCarbonBlack reads the Carbon Black EDR connector's
//     connector.conf (INI, section [bridge]) with the original keys,
//     defaults and parsing quirks (see CarbonBlackOptions), plus new keys in
//     the same style.
//   - LoadOpenCTI reads the OpenCTI VirusTotal connector's environment
//     variables and optional config.yml, the environment overriding the
//     file as pycti's get_config_variable does (see OpenCTIOptions).
//
// Where the sources disagree: OpenCTI defaults follow the connector's README
// tables (file_import_yara false, ip_ and domain_add_relationships true);
// the environment always overrides config.yml (pycti), where the upstream
// pydantic loader ignored the environment once a file existed; the seed's
// unprefixed names (FILE_INDICATOR_DETECT, …) are read as well as the
// VIRUSTOTAL_-prefixed ones, the prefixed name winning. Carbon Black values
// keep Python 2 RawConfigParser's rules (case-insensitive keys, "key: value",
// " ;" comments, submit_full_binaries only true/1), but mistakes the
// original found late or never (rescan_window, debug, booleans) fail at
// load time with a message.
//
// Every error names the file or variable and the key; problems that do not
// stop the program (deprecated, unknown or ignored keys, risky settings)
// come back as Warnings. Secrets are of type Secret (and database URLs of
// type DSN), which print as [redacted] through fmt, log/slog, JSON and
// text marshalling, so neither a log line nor a config dump can leak them.
//
// The package does no I/O besides reading the one file it is given and the
// environment map it is passed, and it imports no other vtconnector
// package: everything else may import it.
package config
