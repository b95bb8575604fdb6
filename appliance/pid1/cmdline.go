package pid1

import "strings"

// bootParams are the gate.* keys of the kernel command line, the highest
// layer of configuration (for recovery: they beat the state partition and
// the image's defaults). Keys without a value read as "1".
type bootParams map[string]string

func parseCmdline(s string) bootParams {
	p := bootParams{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !strings.HasPrefix(k, "gate.") {
			continue
		}
		if !ok {
			v = "1"
		}
		p[strings.TrimPrefix(k, "gate.")] = strings.Trim(v, `"`)
	}
	return p
}
