package opencti

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vtconnector/vtconnector/internal/vt"
)

// noteKindPrivate keys the note of a private report: one per entity, kept
// apart from the public report's note so neither replaces the other.
const noteKindPrivate = "private-report"

// privateReportNote adds the note of a VirusTotal Private Scanning report:
// it says where the verdict comes from (sandboxes and tools, no antivirus
// engines), the threat severity, and each sandbox's verdict.
func (b *builder) privateReportNote() {
	b.add(b.note(noteKindPrivate, b.obs.ID, "VirusTotal Private Scanning Report", privateReportContent(&b.in.Report.Attributes), b.noteRefs()))
}

func privateReportContent(a *vt.Attributes) string {
	var sb strings.Builder
	sb.WriteString("This report comes from a **private analysis** (VirusTotal Private Scanning): the file or URL was not shared, ")
	sb.WriteString("and the verdict counts sandboxes and tools, not antivirus engines.\n\n")
	st := vt.PrivateStats(a)
	sb.WriteString("| Verdicts | Malicious | Suspicious | Harmless | Undetected | Threat severity |\n")
	sb.WriteString("|----------|-----------|------------|----------|------------|-----------------|\n")
	severity := "N/A"
	if ts := a.ThreatSeverity; ts != nil && ts.Level != "" {
		severity = ts.Level
		if ts.LevelDescription != "" {
			severity += " (" + ts.LevelDescription + ")"
		}
	}
	mdRow(&sb, strconv.Itoa(st.Malicious+st.Suspicious+st.Harmless+st.Undetected), strconv.Itoa(st.Malicious),
		strconv.Itoa(st.Suspicious), strconv.Itoa(st.Harmless), strconv.Itoa(st.Undetected), mdCell(severity))
	sb.WriteString("\n## Sandbox Verdicts\n\n")
	sb.WriteString("| Sandbox | Category | Confidence | Malware names | Classification |\n")
	sb.WriteString("|---------|----------|------------|---------------|----------------|\n")
	for _, name := range slices.Sorted(maps.Keys(a.SandboxVerdicts)) {
		v := a.SandboxVerdicts[name]
		if v.SandboxName != "" {
			name = v.SandboxName
		}
		mdRow(&sb, mdCell(name), mdCell(v.Category), strconv.Itoa(v.Confidence),
			mdCell(strings.Join(v.MalwareNames, ", ")), mdCell(strings.Join(v.MalwareClassification, ", ")))
	}
	return strings.TrimRight(sb.String(), "\n")
}
