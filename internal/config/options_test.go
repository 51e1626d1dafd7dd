package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestOptionTablesAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range CarbonBlackOptions() {
		switch {
		case o.INI == "" || o.Env != "" || o.YAML != "":
			t.Errorf("Carbon Black option %+v: want an INI name only", o)
		case seen[o.INI]:
			t.Errorf("Carbon Black option %s listed twice", o.INI)
		case o.Help == "":
			t.Errorf("Carbon Black option %s has no help", o.INI)
		case o.Required && o.Default != "":
			t.Errorf("Carbon Black option %s is required and has a default", o.INI)
		case o.INI != strings.ToLower(o.INI):
			t.Errorf("Carbon Black option %s is not lower case (keys are read lower-cased)", o.INI)
		}
		seen[o.INI] = true
	}
	for _, o := range OpenCTIOptions() {
		names := append([]string{o.Env, o.YAML}, append(o.EnvAliases, o.YAMLAliases...)...)
		for _, n := range names {
			if seen[n] {
				t.Errorf("OpenCTI name %s used twice", n)
			}
			seen[n] = true
		}
		switch {
		case o.Env == "" || o.YAML == "" || o.INI != "":
			t.Errorf("OpenCTI option %+v: want an environment variable and a YAML path", o)
		case o.YAML != envToYAML(o.Env) && !strings.HasPrefix(o.Env, "LISTEN_PROTOCOL_API_SSL_"): // pycti reads these from connector.*
			t.Errorf("OpenCTI option %s: YAML path %s, want %s (pycti's mapping)", o.Env, o.YAML, envToYAML(o.Env))
		case o.Help == "":
			t.Errorf("OpenCTI option %s has no help", o.Env)
		case o.Required && o.Default != "":
			t.Errorf("OpenCTI option %s is required and has a default", o.Env)
		case ignoredWhy(o.Env) != "":
			t.Errorf("OpenCTI option %s is read and also listed as ignored", o.Env)
		}
	}
}

// TestDocumentedDefaultsAreTheDefaults writes each documented default
// explicitly and expects the same configuration as leaving it out.
func TestDocumentedDefaultsAreTheDefaults(t *testing.T) {
	base, _, err := ParseCarbonBlack([]byte(minimalConf), "connector.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range CarbonBlackOptions() {
		if o.Default == "" || o.Computed {
			continue
		}
		c, _, err := ParseCarbonBlack([]byte(minimalConf+o.INI+"="+o.Default+"\n"), "connector.conf")
		if err != nil {
			t.Errorf("%s=%s: %v", o.INI, o.Default, err)
			continue
		}
		if diff := cmp.Diff(base, c, cmpopts.IgnoreUnexported(CarbonBlack{})); diff != "" {
			t.Errorf("%s=%s differs from the default (-default +explicit):\n%s", o.INI, o.Default, diff)
		}
	}

	obase, _, err := ParseOpenCTI(requiredEnv(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range OpenCTIOptions() {
		if o.Default == "" || o.Computed {
			continue
		}
		c, _, err := ParseOpenCTI(with(requiredEnv(), o.Env, o.Default), nil, "")
		if err != nil {
			t.Errorf("%s=%s: %v", o.Env, o.Default, err)
			continue
		}
		if diff := cmp.Diff(obase, c, ignoreOrigins); diff != "" {
			t.Errorf("%s=%s differs from the default (-default +explicit):\n%s", o.Env, o.Default, diff)
		}
	}
}

func TestRedactedCoversEveryOption(t *testing.T) {
	c, _, err := ParseCarbonBlack([]byte(minimalConf+"feed_username=u\nfeed_password=p\ncarbonblack_streaming_password=s\n"), "connector.conf")
	if err != nil {
		t.Fatal(err)
	}
	cbOpts := CarbonBlackOptions()
	dump := c.Redacted()
	if len(dump) != len(cbOpts) {
		t.Fatalf("Redacted() has %d lines for %d options", len(dump), len(cbOpts))
	}
	for i, s := range dump {
		if s.Key != cbOpts[i].INI {
			t.Errorf("line %d is %s, want %s", i, s.Key, cbOpts[i].INI)
		}
		if cbOpts[i].Secret && s.Value != redacted {
			t.Errorf("secret %s shows %q", s.Key, s.Value)
		}
	}

	oc, _, err := ParseOpenCTI(with(requiredEnv(), "MQ_PASS", "p", "MQ_USE_SSL_KEY", "k", "MQ_USE_SSL_PASSPHRASE", "x"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ocOpts := OpenCTIOptions()
	odump := oc.Redacted()
	if len(odump) != len(ocOpts) {
		t.Fatalf("Redacted() has %d lines for %d options", len(odump), len(ocOpts))
	}
	for i, s := range odump {
		if s.Key != ocOpts[i].Env {
			t.Errorf("line %d is %s, want %s", i, s.Key, ocOpts[i].Env)
		}
		if ocOpts[i].Secret && s.Value != redacted && s.Value != "" {
			t.Errorf("secret %s shows %q", s.Key, s.Value)
		}
	}
}
