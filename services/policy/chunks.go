package policy

import (
	"iter"
	"slices"
	"sort"
)

// chunks keeps distinct values in order, for an Index that changes one
// member at a time and is asked for ranges: the members' addresses inside
// a prefix, every member in node ID order.
//
// It is a B-tree of two levels: the values in order, cut into chunks of
// at most chunkMax, and the list of chunks. Finding a value is two binary
// searches; inserting or deleting one moves at most chunkMax values inside
// its chunk, and, when a chunk splits or empties, a chunk header per
// chunkMax values in the list; reading a range is a search and then a
// walk through contiguous memory. One sorted slice would move half the
// network per insert, quadratic over a join storm; one rebuilt lazily
// when a range is asked for after a change would be rebuilt per join when
// every join is answered, quadratic again; a balanced tree or a radix
// trie costs a node and pointers per value (per bit, for a plain trie)
// and a pointer chase per step of a walk. Addresses handed out in order,
// as in a join storm, go at the end of the last chunk and move nothing.
type chunks[T any] struct {
	cmp func(a, b T) int
	cs  [][]T // each non-empty and in order, the last of one before the first of the next
}

// chunkMax is the most values a chunk holds; a fuller one splits in two.
// Chunks that fall below a quarter of it join a neighbour when they fit.
const chunkMax = 512

// buildChunks makes the chunks of vs, which must be in order and without
// repeats. It keeps vs's storage: each chunk is a part of it, with no room
// to grow into the next (inserting copies the chunk).
func buildChunks[T any](vs []T, cmp func(a, b T) int) chunks[T] {
	l := chunks[T]{cmp: cmp}
	const n = chunkMax / 2 // room for inserts before the first split
	for i := 0; i < len(vs); i += n {
		j := min(i+n, len(vs))
		l.cs = append(l.cs, vs[i:j:j])
	}
	return l
}

// seek is where v is or would go: chunk i (len(cs) when v comes after
// every value) and position j in it.
func (l *chunks[T]) seek(v T) (i, j int) {
	i = sort.Search(len(l.cs), func(i int) bool {
		c := l.cs[i]
		return l.cmp(c[len(c)-1], v) >= 0
	})
	if i < len(l.cs) {
		j, _ = slices.BinarySearchFunc(l.cs[i], v, l.cmp)
	}
	return i, j
}

// insert adds v, which must not be there.
func (l *chunks[T]) insert(v T) {
	if len(l.cs) == 0 {
		l.cs = append(l.cs, append(make([]T, 0, 8), v))
		return
	}
	i, j := l.seek(v)
	if i == len(l.cs) { // after every value: at the end of the last chunk
		i--
		j = len(l.cs[i])
	}
	c := slices.Insert(l.cs[i], j, v)
	if len(c) > chunkMax {
		half := len(c) / 2
		right := append(make([]T, 0, chunkMax+1), c[half:]...)
		clear(c[half:]) // let go of what the values point to
		c = c[:half]
		l.cs = slices.Insert(l.cs, i+1, right)
	}
	l.cs[i] = c
}

// delete removes v, if it is there.
func (l *chunks[T]) delete(v T) {
	i, j := l.seek(v)
	if i == len(l.cs) || l.cmp(l.cs[i][j], v) != 0 {
		return
	}
	c := slices.Delete(l.cs[i], j, j+1)
	switch {
	case len(c) == 0:
		l.cs = slices.Delete(l.cs, i, i+1)
		return
	case len(c) < chunkMax/4 && i+1 < len(l.cs) && len(c)+len(l.cs[i+1]) <= chunkMax:
		c = append(c, l.cs[i+1]...)
		l.cs = slices.Delete(l.cs, i+1, i+2)
	case len(c) < chunkMax/4 && i > 0 && len(c)+len(l.cs[i-1]) <= chunkMax:
		l.cs[i-1] = append(l.cs[i-1], c...)
		l.cs = slices.Delete(l.cs, i, i+1)
		return
	}
	l.cs[i] = c
}

// from yields the values from v on (v included when it is there), in
// order.
func (l *chunks[T]) from(v T) iter.Seq[T] {
	return func(yield func(T) bool) {
		i, j := l.seek(v)
		for ; i < len(l.cs); i, j = i+1, 0 {
			for _, x := range l.cs[i][j:] {
				if !yield(x) {
					return
				}
			}
		}
	}
}

// all yields every value, in order.
func (l *chunks[T]) all() iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, c := range l.cs {
			for _, x := range c {
				if !yield(x) {
					return
				}
			}
		}
	}
}
