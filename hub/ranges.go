package hub

import "sort"

func sortRanges(r [][2]int64) {
	sort.Slice(r, func(i, j int) bool { return r[i][0] < r[j][0] })
}

// mergeGaps returns drops and missing ranges of one epoch together, in seq order.
func mergeGaps(drops, missing []Gap) []Gap {
	out := append(append([]Gap{}, drops...), missing...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].FirstSeq < out[j].FirstSeq })
	return out
}
