package spec

import (
	"container/heap"
	"fmt"
	"strings"
)

// depEdge is one REQUIRES/AFTER edge; at locates the directive (zero in TopoOrder).
type depEdge struct {
	to int
	at pos
}

// backEdge is a dependency cycle found by findCycles: the nodes of the cycle
// (first repeated at the end) and the edge that closes it.
type backEdge struct {
	cycle []int
	edge  depEdge
}

// findCycles runs an iterative depth-first search in node order and returns one
// cycle per back edge, so every cycle in the graph is covered by some report.
func findCycles(adj [][]depEdge) []backEdge {
	const (
		white = iota
		gray
		black
	)
	color := make([]uint8, len(adj))
	type frame struct{ node, next int }
	var out []backEdge
	var stack []frame
	for root := range adj {
		if color[root] != white {
			continue
		}
		color[root] = gray
		stack = append(stack[:0], frame{node: root})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(adj[top.node]) {
				color[top.node] = black
				stack = stack[:len(stack)-1]
				continue
			}
			e := adj[top.node][top.next]
			top.next++
			switch color[e.to] {
			case white:
				color[e.to] = gray
				stack = append(stack, frame{node: e.to})
			case gray:
				start := len(stack) - 1
				for stack[start].node != e.to {
					start--
				}
				cyc := make([]int, 0, len(stack)-start+1)
				for _, f := range stack[start:] {
					cyc = append(cyc, f.node)
				}
				out = append(out, backEdge{cycle: append(cyc, e.to), edge: e})
			}
		}
	}
	return out
}

func cycleString(cycle []int, names func(int) string) string {
	parts := make([]string, len(cycle))
	for i, n := range cycle {
		parts[i] = names(n)
	}
	return strings.Join(parts, " -> ")
}

// intHeap is a min-heap of service indexes, so ties resolve in file order.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TopoOrder returns the service names in dependency order (REQUIRES and AFTER
// targets first); among services whose dependencies are met, file order wins.
// Dependencies on services not in the list are ignored. A cycle is an error
// naming it ("a -> b -> a").
func TopoOrder(services []Service) ([]string, error) {
	idx := make(map[string]int, len(services))
	for i, s := range services {
		if _, dup := idx[s.Name]; !dup {
			idx[s.Name] = i
		}
	}
	// adj[i] lists i's dependencies; dependents[j] lists who waits for j.
	adj := make([][]depEdge, len(services))
	dependents := make([][]int, len(services))
	indeg := make([]int, len(services))
	for i, s := range services {
		seen := map[int]bool{}
		for _, list := range [][]string{s.Requires, s.After} {
			for _, d := range list {
				j, ok := idx[d]
				if !ok || seen[j] {
					continue
				}
				seen[j] = true
				adj[i] = append(adj[i], depEdge{to: j})
				dependents[j] = append(dependents[j], i)
				indeg[i]++
			}
		}
	}
	ready := &intHeap{}
	for i := range services {
		if indeg[i] == 0 {
			*ready = append(*ready, i)
		}
	}
	heap.Init(ready)
	order := make([]string, 0, len(services))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, services[i].Name)
		for _, d := range dependents[i] {
			indeg[d]--
			if indeg[d] == 0 {
				heap.Push(ready, d)
			}
		}
	}
	if len(order) < len(services) {
		cycles := findCycles(adj)
		if len(cycles) > 0 {
			// adj points from dependent to dependency; print it in that direction.
			return nil, fmt.Errorf("dependency cycle: %s", cycleString(cycles[0].cycle, func(i int) string { return services[i].Name }))
		}
		return nil, fmt.Errorf("dependency cycle among services")
	}
	return order, nil
}
