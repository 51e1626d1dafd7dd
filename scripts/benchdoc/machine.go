package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the benchmarks ran.
type machine struct {
	CPUs      int    // logical CPUs this process may use (what nproc prints)
	CPUModel  string // /proc/cpuinfo
	MemTotal  string // /proc/meminfo
	MemAvail  string
	OS        string // /etc/os-release PRETTY_NAME
	Kernel    string // /proc/sys/kernel/osrelease
	GoVersion string // go env GOVERSION
	GoOSArch  string // go env GOOS/GOARCH
	GOMAXPROC int
	Load      string // load average when benchdoc started
}

func probeMachine(goBin string) machine {
	m := machine{CPUs: runtime.NumCPU(), GOMAXPROC: runtime.GOMAXPROCS(0), Load: loadAverage()}
	m.CPUModel = cpuModel()
	total, avail := memInfo()
	m.MemTotal, m.MemAvail = total, avail
	m.OS = osRelease()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.GoVersion = firstLine(30*time.Second, goBin, "env", "GOVERSION")
	goos := firstLine(30*time.Second, goBin, "env", "GOOS")
	goarch := firstLine(30*time.Second, goBin, "env", "GOARCH")
	if goos != "" && goarch != "" {
		m.GoOSArch = goos + "/" + goarch
	}
	return m
}

// short is the one-line summary repeated in every section.
func (m machine) short() string {
	parts := []string{fmt.Sprintf("%d × %s", m.CPUs, cmpOr(m.CPUModel, "unknown CPU"))}
	if m.MemTotal != "" {
		parts = append(parts, m.MemTotal+" RAM")
	}
	if m.GoOSArch != "" {
		parts = append(parts, m.GoOSArch)
	}
	if m.GoVersion != "" {
		parts = append(parts, m.GoVersion)
	}
	return strings.Join(parts, ", ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	fallback := ""
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.Join(strings.Fields(v), " ")
		switch k {
		case "model name":
			return v
		case "Hardware", "CPU implementer", "uarch":
			if fallback == "" {
				fallback = k + " " + v
			}
		}
	}
	return fallback
}

// memInfo returns MemTotal and MemAvailable in GiB.
func memInfo() (total, avail string) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "", ""
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		gib := fmt.Sprintf("%.1f GiB", kb/(1<<20))
		switch k {
		case "MemTotal":
			total = gib
		case "MemAvailable":
			avail = gib
		}
	}
	return total, avail
}

func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// loadAverage is the 1-, 5- and 15-minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// rabbitMQVersion opens an AMQP 0-9-1 connection to the broker of
// amqpURL, reads the "version" server property of Connection.Start, and
// hangs up. "" when it cannot (TLS, unreachable, not RabbitMQ).
func rabbitMQVersion(amqpURL string) string {
	u, err := url.Parse(amqpURL)
	if err != nil || u.Scheme != "amqp" {
		return ""
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5672")
	}
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		return ""
	}
	var hdr [7]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 1 {
		return ""
	}
	size := binary.BigEndian.Uint32(hdr[3:])
	if size > 1<<20 {
		return ""
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(c, payload); err != nil {
		return ""
	}
	// class 10 (connection), method 10 (start), version-major, version-minor,
	// then the server-properties field table.
	if len(payload) < 10 || binary.BigEndian.Uint16(payload) != 10 || binary.BigEndian.Uint16(payload[2:]) != 10 {
		return ""
	}
	props := fieldTable(payload[6:])
	return props["version"]
}

// fieldTable decodes the string members of an AMQP field table (length
// prefixed); it stops at a type it does not know.
func fieldTable(b []byte) map[string]string {
	out := map[string]string{}
	if len(b) < 4 {
		return out
	}
	n := int(binary.BigEndian.Uint32(b))
	if n > len(b)-4 {
		return out
	}
	r := bytes.NewReader(b[4 : 4+n])
	for r.Len() > 0 {
		kl, err := r.ReadByte()
		if err != nil {
			break
		}
		key := make([]byte, kl)
		if _, err := io.ReadFull(r, key); err != nil {
			break
		}
		t, err := r.ReadByte()
		if err != nil {
			break
		}
		var skip int64
		switch t {
		case 'S', 'x', 'F', 'A': // long string, bytes, table, array: 4-byte length
			var l uint32
			if binary.Read(r, binary.BigEndian, &l) != nil {
				return out
			}
			if t == 'S' {
				v := make([]byte, l)
				if _, err := io.ReadFull(r, v); err != nil {
					return out
				}
				out[string(key)] = string(v)
				continue
			}
			skip = int64(l)
		case 't', 'b', 'B':
			skip = 1
		case 's', 'u':
			skip = 2
		case 'I', 'i', 'f':
			skip = 4
		case 'D':
			skip = 5
		case 'l', 'L', 'd', 'T':
			skip = 8
		case 'V':
			skip = 0
		default:
			return out
		}
		if _, err := r.Seek(skip, io.SeekCurrent); err != nil {
			return out
		}
	}
	return out
}
