package sandbox

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	linuxRoot := hostFacts{GOOS: "linux", EUID: 0, MaxUserNS: 1000, Cgroup: cgroupV1, CgroupWritable: true, CgroupParent: "sandgate"}
	cases := []struct {
		name    string
		mutate  func(*hostFacts)
		mode    isolationMode
		errHave []string // substrings; nil means success
	}{
		{name: "root on v1", mutate: func(*hostFacts) {}, mode: modeRoot},
		{name: "not linux", mutate: func(f *hostFacts) { f.GOOS = "darwin" },
			errHave: []string{"needs Linux", "darwin"}},
		{name: "rootless, userns disabled by sysctl", mutate: func(f *hostFacts) {
			f.EUID, f.UsernsClone, f.Cgroup = 1000, "0", cgroupV2
		}, errHave: []string{"run as root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"}},
		{name: "rootless, no user namespaces allowed", mutate: func(f *hostFacts) {
			f.EUID, f.MaxUserNS, f.Cgroup = 1000, 0, cgroupV2
		}, errHave: []string{"run as root or enable unprivileged user namespaces"}},
		{name: "rootless on cgroup v1", mutate: func(f *hostFacts) { f.EUID = 1000 },
			errHave: []string{"cgroup v1 limits can only be set by root"}},
		{name: "rootless on v2 without delegation", mutate: func(f *hostFacts) {
			f.EUID, f.Cgroup, f.CgroupWritable = 1000, cgroupV2, false
		}, errHave: []string{"delegate that subtree to uid 1000"}},
		{name: "rootless on delegated v2", mutate: func(f *hostFacts) {
			f.EUID, f.Cgroup, f.UsernsClone = 1000, cgroupV2, "1"
		}, mode: modeRootless},
		{name: "no cgroups", mutate: func(f *hostFacts) { f.Cgroup, f.CgroupErr = 0, errors.New("no cgroup filesystem") },
			errHave: []string{"no cgroup filesystem"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := linuxRoot
			c.mutate(&f)
			mode, err := checkHost(f)
			if c.errHave == nil {
				if err != nil || mode != c.mode {
					t.Fatalf("checkHost = %v, %v; want mode %v", mode, err, c.mode)
				}
				return
			}
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			for _, s := range c.errHave {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestEvidenceCheck(t *testing.T) {
	good := NetEvidence{
		Interfaces:    []string{"lo"},
		Routes:        []string{"127.0.0.0/8 dev lo table 255 type 2"},
		EgressProbes:  []Probe{{Target: "tcp:127.0.0.1:1", Err: "refused", Blocked: true}},
		Namespace:     "net:[2]",
		HostNamespace: "net:[1]",
	}
	if err := good.Check(); err != nil {
		t.Fatalf("good evidence: %v", err)
	}
	bad := good
	bad.Interfaces = []string{"lo", "eth0"}
	bad.Routes = []string{"default via 10.0.0.1 dev eth0 table 254 type 1"}
	bad.EgressProbes = []Probe{{Target: "tcp:10.0.0.1:80"}}
	bad.Namespace = "net:[1]"
	err := bad.Check()
	for _, s := range []string{`interface "eth0"`, "default route", "egress to tcp:10.0.0.1:80 succeeded", "not separate"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Check() = %v, want it to mention %q", err, s)
		}
	}
}
