package vt

// Static tables the synthetic objects draw from. Engine names and versions
// are the ones seen in real VirusTotal reports; everything else is invented
// but shaped like the real thing.

// avEngine is an antivirus engine as it appears in a file's
// last_analysis_results.
type avEngine struct {
	name    string
	version string
}

// avEngines are the file scanners. A report uses 60 to 75 of them.
var avEngines = []avEngine{
	{"ALYac", "2.0.0.10"}, {"APEX", "6.557"}, {"AVG", "23.9.8494.0"},
	{"Acronis", "1.2.0.121"}, {"AhnLab-V3", "3.26.0.10499"}, {"Alibaba", "0.3.0.5"},
	{"Antiy-AVL", "3.0"}, {"Arcabit", "2022.0.0.18"}, {"Avast", "23.9.8494.0"},
	{"Avast-Mobile", "240727-00"}, {"Avira", "8.3.3.20"}, {"Baidu", "1.0.0.2"},
	{"BitDefender", "7.2"}, {"BitDefenderFalx", "2.0.936"}, {"Bkav", "2.0.0.1"},
	{"CAT-QuickHeal", "22.00"}, {"CMC", "2.4.2022.1"}, {"CTX", "2024.8.29.1"},
	{"ClamAV", "1.3.1.0"}, {"CrowdStrike", "1.0"}, {"Cybereason", "1.2.449"},
	{"Cylance", "3.0.0.0"}, {"Cynet", "4.0.1.1"}, {"DeepInstinct", "5.0.0.8"},
	{"DrWeb", "7.0.65.5230"}, {"ESET-NOD32", "29633"}, {"Elastic", "4.0.157"},
	{"Emsisoft", "2024.1.0.53752"}, {"F-Secure", "18.10.1547.307"}, {"FireEye", "35.47.0.0"},
	{"Fortinet", "7.0.30.0"}, {"GData", "A:25.38575B:27.36888"}, {"Google", "1722211237"},
	{"Gridinsoft", "1.0.183.174"}, {"Ikarus", "6.3.12.0"}, {"Jiangmin", "16.0.100"},
	{"K7AntiVirus", "12.177.52740"}, {"K7GW", "12.177.52740"}, {"Kaspersky", "22.0.1.28"},
	{"Kingsoft", "2023.8.14"}, {"Lionic", "8.16"}, {"MAX", "2023.1.4.1"},
	{"Malwarebytes", "4.5.5.54"}, {"MaxSecure", "1.0.0.1"}, {"McAfee", "6.0.6.653"},
	{"McAfeeD", "1.2.0.7977"}, {"MicroWorld-eScan", "14.0.409.0"}, {"Microsoft", "1.1.24060.5"},
	{"NANO-Antivirus", "1.0.146.25796"}, {"Paloalto", "0.9.0.1003"}, {"Panda", "4.6.4.2"},
	{"Rising", "25.0.0.27"}, {"SUPERAntiSpyware", "5.6.0.1032"}, {"Sangfor", "2.25.10.0"},
	{"SentinelOne", "24.2.1.1"}, {"Skyhigh", "v2021.2.0+4045"}, {"Sophos", "2.5.5.0"},
	{"Symantec", "1.22.0.0"}, {"SymantecMobileInsight", "2.0"}, {"TACHYON", "2024-07-28.02"},
	{"Tencent", "1.0.0.1"}, {"Trapmine", "4.0.16.173"}, {"TrendMicro", "11.0.0.1006"},
	{"TrendMicro-HouseCall", "10.0.0.1040"}, {"Trustlook", "1.0"}, {"VBA32", "5.0.0"},
	{"VIPRE", "6.0.0.35"}, {"Varist", "6.5.1.2"}, {"ViRobot", "2014.3.20.0"},
	{"VirIT", "9.5.754"}, {"Webroot", "1.0.0.403"}, {"Xcitium", "36911"},
	{"Yandex", "5.5.2.24"}, {"Zillya", "2.0.0.5162"}, {"ZoneAlarm", "1.0"},
	{"Zoner", "2.2.2.0"}, {"alibabacloud", "2.1.0"}, {"huorong", "e2b848c:fa3d6e1"},
	{"tehtris", "v0.1.4"},
}

// urlEngines are the URL/domain/IP scanners. Their results carry only
// category, engine_name, method and result.
var urlEngines = []string{
	"0xSI_f33d", "ADMINUSLabs", "AICC (MONITORAPP)", "Abusix", "Acronis", "AlienVault",
	"Antiy-AVL", "Artists Against 419", "AutoShun", "Avira", "Bfore.Ai PreCrime",
	"BitDefender", "BlockList", "Blueliv", "CINS Army", "CMC Threat Intelligence", "CRDF",
	"Certego", "Chong Lua Dao", "Comodo Valkyrie Verdict", "CyRadar", "Cyan", "Cyble",
	"DNS8", "Dr.Web", "ESET", "ESTsecurity", "EmergingThreats", "Emsisoft", "Feodo Tracker",
	"Forcepoint ThreatSeeker", "Fortinet", "G-Data", "Google Safebrowsing", "GreenSnow",
	"Heimdal Security", "IPsum", "Juniper Networks", "Kaspersky", "Lionic", "Lumu",
	"MalwarePatrol", "Malwared", "Netcraft", "OpenPhish", "PREBYTES", "PhishLabs",
	"Phishing Database", "Phishtank", "Quick Heal", "Quttera", "Rising", "SCUMWARE.org",
	"SafeToOpen", "Sangfor", "Scantitan", "SecureBrain", "Snort IP sample list", "Sophos",
	"Spam404", "Spamhaus", "StopForumSpam", "Sucuri SiteCheck", "ThreatHive",
	"Threatsourcing", "Trustwave", "URLQuery", "URLhaus", "VX Vault",
	"Viettel Threat Intelligence", "ViriBack", "Webroot", "Yandex Safebrowsing",
	"ZeroCERT", "alphaMountain.ai", "benkow.cc", "desenmascara.me",
	"malwares.com URL checker", "securolytics", "zvelo", "Xcitium Verdict Cloud",
	"Criminal IP", "Gridinsoft", "ArcSight Threat Intelligence", "Hunt.io Intelligence",
	"Mimecast", "SOCRadar", "Ermes", "Bkav", "CSIS Security Group", "Seclookup",
	"ESET-NOD32-URL", "Lookingglass", "Vx Underground", "Cluster25",
}

// fileKind describes a file type as VirusTotal reports it.
type fileKind struct {
	description string // type_description
	tag         string // type_tag
	ext         string // type_extension
	magic       string
	platform    string // used in detection names
	minSize     int64
	maxSize     int64
	tags        []string
}

var fileKinds = []fileKind{
	{"Win32 EXE", "peexe", "exe", "PE32 executable (GUI) Intel 80386, for MS Windows", "Win32", 20 << 10, 6 << 20, []string{"peexe"}},
	{"Win32 EXE", "peexe", "exe", "PE32 executable (GUI) Intel 80386 Mono/.Net assembly, for MS Windows", "MSIL", 10 << 10, 2 << 20, []string{"peexe", "assembly"}},
	{"Win32 DLL", "pedll", "dll", "PE32 executable (DLL) (GUI) Intel 80386, for MS Windows", "Win32", 15 << 10, 4 << 20, []string{"pedll"}},
	{"PDF", "pdf", "pdf", "PDF document, version 1.7", "PDF", 8 << 10, 3 << 20, []string{"pdf"}},
	{"ZIP", "zip", "zip", "Zip archive data, at least v2.0 to extract", "Win32", 4 << 10, 20 << 20, []string{"zip"}},
	{"ELF", "elf", "", "ELF 32-bit LSB executable, ARM, EABI5 version 1 (SYSV), statically linked, stripped", "Linux", 30 << 10, 2 << 20, []string{"elf"}},
	{"Android", "android", "apk", "Zip archive data, at least v2.0 to extract", "AndroidOS", 200 << 10, 30 << 20, []string{"apk", "android"}},
	{"MS Word Document", "doc", "doc", "Composite Document File V2 Document, Little Endian, Os: Windows, Version 10.0", "W97M", 20 << 10, 1 << 20, []string{"doc", "macros"}},
	{"JavaScript", "javascript", "js", "ASCII text, with very long lines", "JS", 1 << 10, 500 << 10, []string{"javascript"}},
	{"Powershell", "powershell", "ps1", "ASCII text, with CRLF line terminators", "PowerShell", 1 << 10, 100 << 10, []string{"powershell"}},
	{"HTML", "html", "html", "HTML document, ASCII text, with very long lines", "HTML", 2 << 10, 400 << 10, []string{"html"}},
}

// Kinds the upload sniffer can return without a match in fileKinds' order.
var (
	kindText    = fileKind{"Text", "text", "txt", "ASCII text", "Script", 0, 0, []string{"text"}}
	kindUnknown = fileKind{"unknown", "unknown", "", "data", "Win32", 0, 0, nil}
)

// family is a malware family with the threat category VirusTotal's
// popular_threat_classification would give it.
type family struct {
	name     string
	category string
}

var familiesByPlatform = map[string][]family{
	"Win32": {{"agenttesla", "trojan"}, {"formbook", "trojan"}, {"lokibot", "trojan"}, {"redline", "trojan"},
		{"remcos", "trojan"}, {"emotet", "trojan"}, {"qakbot", "trojan"}, {"dridex", "banker"},
		{"trickbot", "trojan"}, {"smokeloader", "downloader"}, {"cobaltstrike", "hacktool"},
		{"lockbit", "ransomware"}, {"xmrig", "miner"}, {"vidar", "trojan"}, {"installcore", "adware"}},
	"MSIL":       {{"agenttesla", "trojan"}, {"asyncrat", "trojan"}, {"njrat", "trojan"}, {"nanocore", "trojan"}, {"orcusrat", "trojan"}},
	"PDF":        {{"pdfphish", "phishing"}, {"pidief", "trojan"}, {"pdfka", "downloader"}},
	"Linux":      {{"mirai", "trojan"}, {"gafgyt", "trojan"}, {"xorddos", "trojan"}, {"tsunami", "trojan"}, {"xmrig", "miner"}},
	"AndroidOS":  {{"joker", "trojan"}, {"hiddad", "adware"}, {"hqwar", "banker"}, {"triada", "trojan"}, {"anubis", "banker"}},
	"W97M":       {{"emotet", "downloader"}, {"donoff", "downloader"}, {"valyria", "downloader"}, {"obfuse", "trojan"}},
	"JS":         {{"nemucod", "downloader"}, {"gootloader", "downloader"}, {"fakeupdates", "downloader"}},
	"PowerShell": {{"powload", "downloader"}, {"cobaltstrike", "hacktool"}, {"powersploit", "hacktool"}},
	"HTML":       {{"phishing", "phishing"}, {"iframe", "trojan"}, {"redirector", "trojan"}},
	"Script":     {{"agent", "trojan"}, {"downloader", "downloader"}},
}

// yaraStyle is a crowdsourced YARA source as it appears in
// crowdsourced_yara_results and yara_rulesets objects.
type yaraStyle struct {
	source  string
	author  string
	license string
}

var yaraStyles = []yaraStyle{
	{"https://github.com/Neo23x0/signature-base", "Florian Roth", "Detection Rule License 1.1 https://github.com/Neo23x0/signature-base/blob/master/LICENSE"},
	{"https://github.com/malpedia/signator-rules", "Felix Bilstein - yara-signator at cocacoding dot com", "CC BY-SA 4.0"},
	{"https://github.com/elastic/protections-artifacts", "Elastic Security", "Elastic License v2"},
	{"https://github.com/ditekshen/detection", "ditekSHen", "BSD-2-Clause"},
	{"https://github.com/JPCERTCC/MalConfScan", "JPCERT/CC Incident Response Group", "BSD-3-Clause"},
	{"https://github.com/reversinglabs/reversinglabs-yara-rules", "ReversingLabs", "MIT"},
}

// autonomousSystem is an AS an IP address can belong to.
type autonomousSystem struct {
	asn     int
	owner   string
	country string
}

var autonomousSystems = []autonomousSystem{
	{15169, "GOOGLE", "US"}, {16509, "AMAZON-02", "US"}, {13335, "CLOUDFLARENET", "US"},
	{8075, "MICROSOFT-CORP-MSN-AS-BLOCK", "US"}, {14061, "DIGITALOCEAN-ASN", "US"},
	{20473, "AS-CHOOPA", "US"}, {63949, "Akamai Connected Cloud", "US"}, {7922, "COMCAST-7922", "US"},
	{24940, "Hetzner Online GmbH", "DE"}, {51167, "Contabo GmbH", "DE"}, {3320, "Deutsche Telekom AG", "DE"},
	{16276, "OVH SAS", "FR"}, {3215, "Orange", "FR"}, {2856, "British Telecommunications PLC", "GB"},
	{9009, "M247 Europe SRL", "RO"}, {12389, "Rostelecom", "RU"}, {49505, "JSC Selectel", "RU"},
	{60781, "LeaseWeb Netherlands B.V.", "NL"}, {4134, "Chinanet", "CN"},
	{4837, "CHINA UNICOM China169 Backbone", "CN"}, {45090, "Shenzhen Tencent Computer Systems Company Limited", "CN"},
	{4766, "Korea Telecom", "KR"}, {17676, "SoftBank Corp.", "JP"}, {9829, "National Internet Backbone", "IN"},
	{28573, "Claro NXT Telecomunicacoes Ltda", "BR"}, {37963, "Hangzhou Alibaba Advertising Co.,Ltd.", "CN"},
	{36873, "VNL1-AS", "NG"}, {37611, "Afrihost", "ZA"},
}

// countryRegion maps a country to its continent and regional internet
// registry.
var countryRegion = map[string][2]string{
	"US": {"NA", "ARIN"}, "DE": {"EU", "RIPE NCC"}, "FR": {"EU", "RIPE NCC"}, "GB": {"EU", "RIPE NCC"},
	"RO": {"EU", "RIPE NCC"}, "RU": {"EU", "RIPE NCC"}, "NL": {"EU", "RIPE NCC"}, "CN": {"AS", "APNIC"},
	"KR": {"AS", "APNIC"}, "JP": {"AS", "APNIC"}, "IN": {"AS", "APNIC"}, "BR": {"SA", "LACNIC"},
	"NG": {"AF", "AFRINIC"}, "ZA": {"AF", "AFRINIC"},
}

var (
	nameWords = []string{"invoice", "setup", "update", "document", "report", "installer", "scan",
		"photo", "order", "agent", "readme", "contract", "statement", "payment", "client", "loader",
		"service", "driver", "patch", "backup"}
	domainWords = []string{"example", "acme", "globex", "initech", "contoso", "fabrikam", "northwind",
		"umbrella", "hooli", "vandelay", "wonka", "tyrell", "cyberdyne", "soylent", "oscorp",
		"gringotts", "monarch", "stark", "wayne", "pied-piper"}
	subdomainWords = []string{"www", "cdn", "mail", "api", "static", "secure", "login", "update",
		"portal", "shop", "cloud", "my", "app", "files", "img"}
	tlds       = []string{"com", "com", "com", "net", "org", "io", "ru", "cn", "info", "xyz", "top", "de", "online", "site"}
	registrars = []string{"MarkMonitor Inc.", "GoDaddy.com, LLC", "NameCheap, Inc.", "Tucows Domains Inc.",
		"Cloudflare, Inc.", "NameSilo, LLC", "REG.RU LLC", "Alibaba Cloud Computing (Beijing) Co., Ltd.",
		"PDR Ltd. d/b/a PublicDomainRegistry.com", "Gandi SAS"}
	cleanCategories = []string{"information technology", "business", "news", "shopping",
		"search engines and portals", "education", "finance", "entertainment", "travel", "health"}
	badCategories = []string{"phishing", "malicious sites", "command and control",
		"malware repository", "known infection source", "spyware and adware"}
	categoryEngines = []string{"Forcepoint ThreatSeeker", "Sophos", "BitDefender", "alphaMountain.ai",
		"Xcitium Verdict Cloud", "Webroot"}
	resolvers = []string{"VirusTotal", "VirusTotal", "VirusTotal", "Georgia Institute of Technology", "ZoneFiles"}
)

// eicar is the EICAR anti-malware test string. Uploads starting with it are
// detected by nearly every engine, like on the real service.
const eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
