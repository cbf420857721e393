package browsertest

import (
	"testing"
)

// testCluster shows the cluster page of a single hub: it names the hub you
// are on, says it runs alone and leads its own stream, and the header badge
// names the hub on every page.
func testCluster(t *testing.T, b *browser, f *fleet) {
	var api struct {
		Name      string `json:"name"`
		Clustered bool   `json:"clustered"`
	}
	if err := f.getJSON("/api/v1/cluster", &api); err != nil || api.Name == "" || api.Clustered {
		t.Fatalf("GET /api/v1/cluster: %+v, %v", api, err)
	}
	b.route("#/cluster")
	type view struct {
		On, Cluster, Active, Leader string
		Rows                        []string
		Roles                       []string
	}
	got := waitJS(b, "the cluster page to show this hub", `(() => ({
		On: document.querySelector('[data-stat="name"] dd')?.textContent ?? '',
		Cluster: document.querySelector('[data-stat="cluster"] dd')?.textContent ?? '',
		Active: document.querySelector('[data-stat="active"] dd')?.textContent ?? '',
		Leader: document.querySelector('[data-stat="leader"] dd')?.textContent ?? '',
		Rows: [...document.querySelectorAll('#cluster-table tbody tr[data-peer]')].map(r => r.dataset.peer),
		Roles: [...document.querySelectorAll('#cluster-table tbody tr[data-peer] .badge')].map(b => b.textContent),
	}))()`, func(v view) bool { return v.On != "" })
	if got.On != api.Name || got.Cluster != "single hub" || got.Active != "1 / 1" || got.Leader != api.Name ||
		len(got.Rows) != 1 || got.Rows[0] != api.Name {
		t.Errorf("cluster page %+v, want hub %s alone, leading its stream", got, api.Name)
	}
	for _, want := range []string{"this hub", "stream leader", "active", "caught up"} {
		found := false
		for _, r := range got.Roles {
			found = found || r == want
		}
		if !found {
			t.Errorf("the hub's row shows %v, without %q", got.Roles, want)
		}
	}
	waitJS(b, "the header badge to name the hub", `document.getElementById('hub-badge')?.textContent ?? ''`,
		func(s string) bool { return s == api.Name+" · single hub" })
	b.checkAccessible("cluster")
	b.screenshot("cluster-1280.png")
}
