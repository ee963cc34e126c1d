# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Exact Sudoku solver for box sizes 2, 3 and 4 (4x4, 9x9, 16x16 boards).

Candidates are bitmasks (bit d set = digit d+1 still allowed). A search node
propagates naked singles (a cell with one candidate) and hidden singles (a digit with
one place left in a row, column or box) to a fixed point, then branches on the empty
cell with the fewest candidates. Nodes copy their whole state instead of keeping an
undo trail: a 16x16 state is well under 2 kB and copying it is cheaper than the
bookkeeping an undo log needs.

Randomness (for filling complete grids) comes only from a xoshiro256** generator
seeded by the caller, never from the C library's global rand(), so results are
reproducible and independent of other code in the process.
"""

from libc.stdint cimport int8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import numpy as np

cdef enum:
    MAX_SIDE = 16
    MAX_CELLS = 256
    MAX_UNITS = 48

ctypedef struct Layout:
    int box
    int side
    int cells
    int units
    uint32_t full                      # all candidate bits for this side
    int unit_cells[MAX_UNITS][MAX_SIDE]
    int cell_row[MAX_CELLS]
    int cell_col[MAX_CELLS]
    int cell_box[MAX_CELLS]

ctypedef struct State:
    int8_t value[MAX_CELLS]            # 0 = empty, else digit 1..side
    uint32_t row_used[MAX_SIDE]
    uint32_t col_used[MAX_SIDE]
    uint32_t box_used[MAX_SIDE]
    int empty                          # number of empty cells

ctypedef struct Rng:
    uint64_t s[4]

ctypedef struct Search:
    int limit                          # stop after this many solutions
    int count                          # solutions found so far
    long long nodes                    # search nodes visited
    long long node_limit               # give up (count = -1) past this; 0 = no limit
    bint randomize                     # try branch digits in random order
    Rng rng
    int8_t first[MAX_CELLS]            # the first solution found


cdef extern from *:
    int __builtin_popcount(unsigned int) nogil
    int __builtin_ctz(unsigned int) nogil


# ---------------------------------------------------------------- random numbers

cdef inline uint64_t _rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline uint64_t _splitmix64(uint64_t* x) noexcept nogil:
    x[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    cdef uint64_t z = x[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef void _rng_seed(Rng* rng, uint64_t seed) noexcept nogil:
    # splitmix64 expands one word into the four state words, as xoshiro's authors advise;
    # it can never produce the all-zero state.
    cdef uint64_t x = seed
    cdef int i
    for i in range(4):
        rng.s[i] = _splitmix64(&x)


cdef inline uint64_t _rng_next(Rng* rng) noexcept nogil:
    cdef uint64_t result = _rotl(rng.s[1] * 5, 7) * 9
    cdef uint64_t t = rng.s[1] << 17
    rng.s[2] ^= rng.s[0]
    rng.s[3] ^= rng.s[1]
    rng.s[1] ^= rng.s[2]
    rng.s[0] ^= rng.s[3]
    rng.s[2] ^= t
    rng.s[3] = _rotl(rng.s[3], 45)
    return result


cdef inline int _rng_below(Rng* rng, int bound) noexcept nogil:
    # Multiply-shift (Lemire) without the rejection step: the bias is below 2^-27 for
    # bound <= 16, far beneath anything a puzzle generator can notice.
    return <int>(((_rng_next(rng) >> 32) * <uint64_t>bound) >> 32)


# ---------------------------------------------------------------- board layout

cdef int _make_layout(Layout* layout, int box) except -1:
    if box < 2 or box > 4:
        raise ValueError(f"box size must be 2, 3 or 4, got {box}")
    cdef int side = box * box
    cdef int r, c, i, b
    layout.box = box
    layout.side = side
    layout.cells = side * side
    layout.units = 3 * side
    layout.full = (<uint32_t>1 << side) - 1
    for r in range(side):
        for c in range(side):
            b = (r // box) * box + c // box
            layout.cell_row[r * side + c] = r
            layout.cell_col[r * side + c] = c
            layout.cell_box[r * side + c] = b
    for i in range(side):
        for r in range(side):
            layout.unit_cells[i][r] = i * side + r                     # row i
            layout.unit_cells[side + i][r] = r * side + i              # column i
            layout.unit_cells[2 * side + i][r] = (
                ((i // box) * box + r // box) * side + (i % box) * box + r % box
            )                                                          # box i
    return 0


cdef inline int _popcount(uint32_t x) noexcept nogil:
    return __builtin_popcount(x)


cdef inline int _lowest_bit(uint32_t x) noexcept nogil:
    return __builtin_ctz(x)


cdef inline uint32_t _candidates(const Layout* layout, const State* state, int cell) noexcept nogil:
    return layout.full & ~(
        state.row_used[layout.cell_row[cell]]
        | state.col_used[layout.cell_col[cell]]
        | state.box_used[layout.cell_box[cell]]
    )


cdef inline void _place(const Layout* layout, State* state, int cell, int digit) noexcept nogil:
    cdef uint32_t bit = <uint32_t>1 << (digit - 1)
    state.value[cell] = <int8_t>digit
    state.row_used[layout.cell_row[cell]] |= bit
    state.col_used[layout.cell_col[cell]] |= bit
    state.box_used[layout.cell_box[cell]] |= bit
    state.empty -= 1


cdef inline void _unplace(const Layout* layout, State* state, int cell) noexcept nogil:
    """Undo _place: empty the cell and give its digit back to its row, column and box."""
    cdef uint32_t bit = <uint32_t>1 << (state.value[cell] - 1)
    state.value[cell] = 0
    state.row_used[layout.cell_row[cell]] &= ~bit
    state.col_used[layout.cell_col[cell]] &= ~bit
    state.box_used[layout.cell_box[cell]] &= ~bit
    state.empty += 1


cdef int _load(const Layout* layout, State* state, const int8_t* grid) noexcept nogil:
    """Fill state from a grid; returns 0, or -1 if the givens already clash."""
    cdef int cell, digit
    cdef uint32_t bit
    for cell in range(layout.side):
        state.row_used[cell] = 0
        state.col_used[cell] = 0
        state.box_used[cell] = 0
    state.empty = layout.cells
    for cell in range(layout.cells):
        state.value[cell] = 0
    for cell in range(layout.cells):
        digit = grid[cell]
        if digit == 0:
            continue
        if digit < 0 or digit > layout.side:
            return -1
        bit = <uint32_t>1 << (digit - 1)
        if (state.row_used[layout.cell_row[cell]]
                | state.col_used[layout.cell_col[cell]]
                | state.box_used[layout.cell_box[cell]]) & bit:
            return -1
        _place(layout, state, cell, digit)
    return 0


cdef int _propagate(const Layout* layout, State* state) noexcept nogil:
    """Place forced digits until none is left.

    Returns -1 on a contradiction, otherwise the empty cell with the fewest candidates
    (or -2 when the board is full).
    """
    cdef int cell, unit, i, best, best_count, count, digit
    cdef uint32_t cand, once, twice, placed, hidden
    cdef bint changed = True
    while changed:
        changed = False
        best = -2
        best_count = 99
        for cell in range(layout.cells):
            if state.value[cell] != 0:
                continue
            cand = _candidates(layout, state, cell)
            count = _popcount(cand)
            if count == 0:
                return -1
            if count == 1:
                _place(layout, state, cell, _lowest_bit(cand) + 1)
                changed = True
            elif count < best_count:
                best_count = count
                best = cell
        if state.empty == 0:
            return -2
        if changed:
            continue
        # Hidden singles: a digit allowed in exactly one cell of a unit must go there.
        for unit in range(layout.units):
            once = 0
            twice = 0
            placed = 0
            for i in range(layout.side):
                cell = layout.unit_cells[unit][i]
                if state.value[cell] != 0:
                    placed |= <uint32_t>1 << (state.value[cell] - 1)
                    continue
                cand = _candidates(layout, state, cell)
                twice |= once & cand
                once |= cand
            if (once | placed) != layout.full:
                return -1               # some digit has no place left in this unit
            hidden = once & ~twice & ~placed
            while hidden:
                digit = _lowest_bit(hidden)
                hidden &= hidden - 1
                for i in range(layout.side):
                    cell = layout.unit_cells[unit][i]
                    if state.value[cell] == 0 and (_candidates(layout, state, cell) >> digit) & 1:
                        _place(layout, state, cell, digit + 1)
                        changed = True
                        break
                # A placement above may have removed the only spot of a later hidden
                # digit of this unit; the next pass of the outer loop detects that.
            if changed:
                break
    return best


cdef void _search(const Layout* layout, State* state, Search* search) noexcept nogil:
    cdef int cell, digit, n, i, j, tmp
    cdef uint32_t cand
    cdef int order[MAX_SIDE]
    cdef State child
    search.nodes += 1
    if search.node_limit > 0 and search.nodes > search.node_limit:
        search.count = -1
        return
    cell = _propagate(layout, state)
    if cell == -1:
        return
    if cell == -2:
        if search.count == 0:
            memcpy(search.first, state.value, layout.cells * sizeof(int8_t))
        search.count += 1
        return
    cand = _candidates(layout, state, cell)
    n = 0
    while cand:
        order[n] = _lowest_bit(cand) + 1
        cand &= cand - 1
        n += 1
    if search.randomize:
        for i in range(n - 1, 0, -1):
            j = _rng_below(&search.rng, i + 1)
            tmp = order[i]
            order[i] = order[j]
            order[j] = tmp
    for i in range(n):
        memcpy(&child, state, sizeof(State))
        _place(layout, &child, cell, order[i])
        _search(layout, &child, search)
        if search.count < 0 or search.count >= search.limit:
            return


cdef int _count(const Layout* layout, const int8_t* grid, int limit, int8_t* solution) noexcept nogil:
    """Number of solutions of grid, stopping at limit; the first one goes to solution."""
    cdef State state
    cdef Search search
    if _load(layout, &state, grid) < 0:
        return 0
    search.limit = limit
    search.count = 0
    search.nodes = 0
    search.node_limit = 0
    search.randomize = False
    _search(layout, &state, &search)
    if solution != NULL and search.count > 0:
        memcpy(solution, search.first, layout.cells * sizeof(int8_t))
    return search.count


# ---------------------------------------------------------------- Python interface

def _as_grid(grid, int box):
    side = box * box
    array = np.ascontiguousarray(grid, dtype=np.int8)
    if array.shape != (side, side):
        raise ValueError(f"expected a {side}x{side} grid for box size {box}, got shape {array.shape}")
    return array


def _box_of(grid) -> int:
    side = np.shape(grid)[0]
    box = int(round(side ** 0.5))
    if box * box != side or np.shape(grid) != (side, side):
        raise ValueError(f"a Sudoku grid is square with side box**2, got shape {np.shape(grid)}")
    return box


def count_solutions(grid, int limit=2) -> int:
    """Number of completions of grid (0 = blank), counting no further than limit."""
    cdef Layout layout
    cdef int box = _box_of(grid)
    if limit < 1:
        raise ValueError("limit must be at least 1")
    _make_layout(&layout, box)
    cdef int8_t[:, ::1] cells = _as_grid(grid, box)
    cdef int count
    with nogil:
        count = _count(&layout, &cells[0, 0], limit, NULL)
    return count


def solve(grid):
    """A completion of grid as an int8 array, or None if it has none.

    Does not check uniqueness; use count_solutions for that.
    """
    cdef Layout layout
    cdef int box = _box_of(grid)
    _make_layout(&layout, box)
    cdef int8_t[:, ::1] cells = _as_grid(grid, box)
    solution = np.zeros((layout.side, layout.side), dtype=np.int8)
    cdef int8_t[:, ::1] out = solution
    cdef int count
    with nogil:
        count = _count(&layout, &cells[0, 0], 1, &out[0, 0])
    return solution if count > 0 else None


def random_full_grid(int box, uint64_t seed):
    """A random complete grid, determined by seed.

    Each branch tries its digits in random order. That reaches every grid but not with
    exactly equal probability, which does not matter for training data.
    """
    cdef Layout layout
    cdef State state
    cdef Search search
    cdef int attempt
    cdef int8_t empty[MAX_CELLS]
    _make_layout(&layout, box)
    grid = np.zeros((layout.side, layout.side), dtype=np.int8)
    cdef int8_t[:, ::1] out = grid
    memset(empty, 0, sizeof(empty))
    _rng_seed(&search.rng, seed)
    search.limit = 1
    search.randomize = True
    # A random descent on 16x16 boards occasionally wanders into a huge dead subtree;
    # restarting with fresh random choices is much cheaper than finishing that search.
    search.node_limit = 0 if box <= 3 else 20000
    with nogil:
        for attempt in range(1000):
            search.count = 0
            search.nodes = 0
            _load(&layout, &state, empty)
            _search(&layout, &state, &search)
            if search.count == 1:
                break
    if search.count != 1:
        raise RuntimeError("could not fill a random grid")  # not expected to happen
    memcpy(&out[0, 0], search.first, layout.cells * sizeof(int8_t))
    return grid


cdef tuple _dig_arguments(solution, removal_order, str name, Layout* layout):
    """(a copy of the complete grid, the removal order as int64) after checking both;
    fills ``layout`` for the grid's size."""
    cdef int box = _box_of(solution)
    _make_layout(layout, box)
    cells = box ** 4
    puzzle = _as_grid(solution, box).copy()
    order_array = np.ascontiguousarray(removal_order, dtype=np.int64)
    if order_array.ndim != 1 or (order_array.size and (order_array.min() < 0 or order_array.max() >= cells)):
        raise ValueError("removal_order must list cell indices 0..cells-1")
    if np.count_nonzero(puzzle) != cells or count_solutions(puzzle, 1) != 1:
        raise ValueError(f"{name} needs a complete, valid grid")
    return puzzle, order_array.astype(np.longlong)


def dig_holes(solution, removal_order, int target_givens):
    """Blank cells of a complete grid in the given order while the puzzle stays unique.

    Cells whose removal would admit a second solution are kept. Stops as soon as only
    target_givens givens remain, or when every cell has been tried (the puzzle is then
    minimal and may have more than target_givens givens). Returns the puzzle.
    """
    cdef Layout layout
    puzzle, order_array = _dig_arguments(solution, removal_order, "dig_holes", &layout)
    cdef int8_t[::1] grid = puzzle.reshape(-1)
    cdef long long[::1] order = order_array
    cdef int givens = layout.cells
    cdef int i, cell
    cdef int8_t kept
    with nogil:
        for i in range(order.shape[0]):
            if givens <= target_givens:
                break
            cell = <int>order[i]
            kept = grid[cell]
            if kept == 0:
                continue
            grid[cell] = 0
            if _count(&layout, &grid[0], 2, NULL) == 1:
                givens -= 1
            else:
                grid[cell] = kept
    return puzzle


cdef inline bint _forced_in_unit(const Layout* layout, const State* state, int unit, int cell,
                                 uint32_t bit) noexcept nogil:
    """Whether no empty cell of unit other than cell can take the digit of bit."""
    cdef int i, other
    for i in range(layout.side):
        other = layout.unit_cells[unit][i]
        if other != cell and state.value[other] == 0 and (_candidates(layout, state, other) & bit):
            return False
    return True


def dig_deducible(solution, removal_order, int target_givens=0):
    """Blank cells of a complete grid in the given order while each stays a hidden single.

    A cell is blanked only if, once blank, its digit fits no other empty cell of its row,
    its column or its box (so the puzzle is solved by filling such cells back in reverse
    order, and its solution is unique). A kept cell is never tried again: blanking more
    cells only widens the candidates, so it cannot become removable. This is how the
    data sets of the published SATNet and SymSATNet experiments were generated (Park's
    generator, about 36 givens for 9x9). Stops once only target_givens givens remain.
    Returns the puzzle.
    """
    cdef Layout layout
    cdef State state
    puzzle, order_array = _dig_arguments(solution, removal_order, "dig_deducible", &layout)
    cdef int8_t[::1] grid = puzzle.reshape(-1)
    cdef long long[::1] order = order_array
    cdef int givens = layout.cells
    cdef int i, cell, digit
    cdef uint32_t bit
    with nogil:
        _load(&layout, &state, &grid[0])
        for i in range(order.shape[0]):
            if givens <= target_givens:
                break
            cell = <int>order[i]
            digit = state.value[cell]
            if digit == 0:
                continue
            bit = <uint32_t>1 << (digit - 1)
            _unplace(&layout, &state, cell)
            if (_forced_in_unit(&layout, &state, layout.cell_row[cell], cell, bit)
                    or _forced_in_unit(&layout, &state, layout.side + layout.cell_col[cell], cell, bit)
                    or _forced_in_unit(&layout, &state, 2 * layout.side + layout.cell_box[cell], cell, bit)):
                grid[cell] = 0
                givens -= 1
            else:
                _place(&layout, &state, cell, digit)
    return puzzle
