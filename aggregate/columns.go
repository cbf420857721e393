package aggregate

import (
	"encoding/binary"
	"fmt"

	"github.com/tributary-edge/tributary/pattern"
)

// AddMatches counts the matches of one chunk as pattern.EachMatch gives them,
// as Add would count each of those events. When the read went through the
// chunk's columns and they hold every data path the plan reads, the values
// come from there, without decoding the events; a group field that is an
// object or an array in some event takes that event from its JSON. Otherwise
// every match is decoded and added with Add. Errors are Add's, and the
// chunk's when its events cannot be decoded.
func (s *State) AddMatches(m *pattern.ChunkMatches) error {
	c := m.Chunk
	ni, ok := s.nodeIdx[c.Node]
	if !ok {
		return nil
	}
	if m.Columns != nil && s.bind(m.Columns) {
		return s.addColumns(m, ni)
	}
	evs, err := m.Events()
	if err != nil {
		return err
	}
	for _, i := range m.Rows {
		if i < 0 || i >= len(evs) {
			return fmt.Errorf("aggregate: match %d of a chunk of %d events", i, len(evs))
		}
		if err := s.Add(&evs[i]); err != nil {
			return err
		}
	}
	return nil
}

// bind points s.bound at the columns of the plan's data paths, nil for a path
// in none of the events; it reports false when a path may be in the data
// without a column, or its column is damaged.
func (s *State) bind(cols *pattern.Columns) bool {
	paths := s.p.paths
	if cap(s.bound) < len(paths) {
		s.bound = make([]*pattern.Column, len(paths))
	}
	s.bound = s.bound[:len(paths)]
	for i, path := range paths {
		col := cols.Column(path)
		if col == nil && (!cols.Complete || cols.Has(path)) {
			return false
		}
		s.bound[i] = col
	}
	return true
}

// addColumns is AddMatches through the columns bound by bind.
func (s *State) addColumns(m *pattern.ChunkMatches, ni int) error {
	p, cols, c := s.p, m.Columns, m.Chunk
	nf := len(p.fpath)
	for _, i := range m.Rows {
		ts := cols.TS[i]
		if ts < p.from || ts >= p.to {
			continue
		}
		w := floorDiv(ts, p.window) - p.first
		key := binary.LittleEndian.AppendUint32(s.key[:0], uint32(w))
		whole := true
		for gi, g := range p.groups {
			switch g.src {
			case fromNode:
				key = appendString(key, c.Node)
			case fromStream:
				key = appendString(key, c.Stream)
			default:
				key, whole = appendColumnValue(key, s.bound[p.gsrc[gi]], i)
			}
			if !whole {
				break
			}
		}
		s.key = key
		if !whole {
			evs, err := m.Events()
			if err != nil {
				return err
			}
			if i >= len(evs) {
				return fmt.Errorf("aggregate: match %d of a chunk of %d events", i, len(evs))
			}
			if err := s.Add(&evs[i]); err != nil {
				return err
			}
			continue
		}
		ci, err := s.cell(key)
		if err != nil {
			return err
		}
		s.meta[ci].count++
		if nf > 0 {
			nums := s.nums[int(ci)*nf : int(ci+1)*nf]
			for f := range nums {
				col := s.bound[p.fpath[f]]
				if col == nil {
					continue
				}
				switch col.Kind[i] {
				case pattern.ColInt:
					nums[f].add(float64(col.Int[i]), p.fsketch[f])
				case pattern.ColFloat:
					nums[f].add(col.Float[i], p.fsketch[f])
				}
			}
		}
		s.mark(int(w), ni)
	}
	return nil
}
