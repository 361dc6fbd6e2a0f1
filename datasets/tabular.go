package datasets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultTabularRowGroupRows is the row-group size for tabular files. Rows
// are narrow (~15 columns), so 1 Mi rows is ~60–120 MiB uncompressed, the
// size readers like; parquet-go buffers one row group, which bounds memory
// (10M rows peak well under 150 MiB, see TestTabular10MRowsRSS).
const DefaultTabularRowGroupRows = 1 << 20

// tabularBatchRows is the unit handed from the generating goroutine to the
// writing one: large enough to amortise channel hand-offs, small enough
// (~1.5 MiB of values) not to matter for memory.
const tabularBatchRows = 4096

// tabularStream separates tabular PCG streams from the prompt generator's,
// so one seed used for both datasets does not correlate them.
const tabularStream = 0x7461627561723031 // "tabular01"

// Leading columns every tabular file has, before the spec's columns.
const (
	colID      = 0 // id: output row number, unique within (spec, options, seed)
	colTwinOf  = 1 // twin_of: id of the original row; null for originals
	colFlipped = 2 // flipped_attribute: protected column changed in this twin; "" for originals
	nLeading   = 3
)

// TabularOptions tunes generation. The zero value emits counterfactual
// twins for every protected attribute.
type TabularOptions struct {
	// NoTwins drops the counterfactual twins.
	NoTwins bool
}

// TabularRow is one generated row. Values follow the spec's columns:
// int64 for int, float64 for float, string for category, bool for bool.
type TabularRow struct {
	ID int64
	// TwinOf is the ID of the original row this twin copies, -1 for
	// original rows.
	TwinOf int64
	// FlippedAttribute names the protected column this twin changes ("" for
	// originals); every other value equals the original's.
	FlippedAttribute string
	Values           []any
}

// TabularGenerator turns a validated spec into rows. It is immutable and
// safe for concurrent use; each call to Rows or WriteParquet has its own
// random state, so shards can be generated in parallel.
type TabularGenerator struct {
	spec      TabularSpec
	cols      []tabColumn
	latent    []int     // spec column index of each latent (copula) dimension
	chol      []float64 // lower Cholesky factor, row-major k×k
	protected []int
	twins     int // twins per original row
	noTwins   bool
	schema    *parquet.Schema
	flipNames [][]byte // flipped_attribute values: "" then one per protected column
}

// tabColumn is a compiled column: parameters resolved, tables built.
type tabColumn struct {
	name     string
	typ      string
	kind     string
	a, b     float64   // normal mean/std, lognormal mu/sigma, uniform min/max, bernoulli p
	cum      []float64 // categorical / poisson cumulative probabilities
	quant    []float64 // empirical quantiles
	strs     []string
	bytes    [][]byte // category values as Parquet byte arrays, shared by all rows
	latent   int      // index in the latent vector, -1 when independent
	lo, hi   float64  // clip bounds (±Inf when absent)
	roundPow float64  // 10^round for float columns, 0 for no rounding
}

// NewTabular validates spec and compiles it into a generator.
func NewTabular(spec *TabularSpec, opts TabularOptions) (*TabularGenerator, error) {
	if spec == nil {
		return nil, errors.New("tabular spec: nil spec")
	}
	g, err := compileTabular(spec)
	if err != nil {
		return nil, err
	}
	g.noTwins = opts.NoTwins
	if g.noTwins {
		g.twins = 0
	}
	return g, nil
}

// Tabular streams n original rows (plus their twins) for seed. It is the
// short form of NewTabular(spec, TabularOptions{}).Rows(seed, 0, n).
func Tabular(spec *TabularSpec, seed uint64, n int64) (iter.Seq[TabularRow], error) {
	g, err := NewTabular(spec, TabularOptions{})
	if err != nil {
		return nil, err
	}
	return g.Rows(seed, 0, n), nil
}

func compileTabular(s *TabularSpec) (*TabularGenerator, error) {
	var errs specErrors
	if err := ValidateName(s.Name); err != nil {
		errs.add("name: %v", err)
	}
	switch {
	case len(s.Columns) == 0:
		errs.add("columns is empty; declare at least one column")
	case len(s.Columns) > maxTabularColumns:
		errs.add("columns has %d entries; the limit is %d", len(s.Columns), maxTabularColumns)
	}
	index := map[string]int{}
	healthy := true
	for i, c := range s.Columns {
		if !validColumnName(c.Name) {
			errs.add("columns[%d].name %q must match [a-z][a-z0-9_]* (at most 63 characters) so SQL and pandas can use it unquoted", i, c.Name)
		} else if slices.Contains(reservedColumns, c.Name) {
			errs.add("columns[%d].name %q is written by the generator (reserved: id, twin_of, flipped_attribute); rename the column", i, c.Name)
		} else if j, dup := index[c.Name]; dup {
			errs.add("columns[%d].name %q duplicates columns[%d]", i, c.Name, j)
		} else {
			index[c.Name] = i
		}
		healthy = validateColumn(&errs, i, c) && healthy
	}
	g := &TabularGenerator{}
	for i, p := range s.Protected {
		j, ok := index[p]
		switch {
		case !ok:
			errs.add("protected[%d]: no column named %q; declare it under columns (type category or bool) or remove it from protected", i, p)
			continue
		case s.Columns[j].Type != ColumnCategory && s.Columns[j].Type != ColumnBool:
			errs.add("protected[%d]: column %q is %s; protected attributes must be category or bool columns (bin a numeric one, e.g. age_band)", i, p, s.Columns[j].Type)
			continue
		case slices.Contains(g.protected, j):
			errs.add("protected[%d]: %q is listed twice", i, p)
			continue
		}
		g.protected = append(g.protected, j)
	}
	if !healthy {
		// Correlation checks need well-formed columns; report what we have.
		return nil, errs.err()
	}
	latent, chol := correlationMatrix(&errs, s, index)
	if err := errs.err(); err != nil {
		return nil, err
	}

	g.spec = cloneSpec(s)
	g.latent = latent
	if chol != nil {
		k := len(latent)
		g.chol = make([]float64, k*k)
		for i := 0; i < k; i++ {
			for j := 0; j <= i; j++ {
				g.chol[i*k+j] = chol.At(i, j)
			}
		}
	}
	for i, c := range g.spec.Columns {
		g.cols = append(g.cols, compileColumn(c, slices.Index(latent, i)))
	}
	g.flipNames = [][]byte{{}}
	for _, j := range g.protected {
		g.twins += len(g.cols[j].cum) - 1
		g.flipNames = append(g.flipNames, []byte(g.cols[j].name))
	}
	g.schema = tabularSchema(g.cols)
	return g, nil
}

func validColumnName(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// cloneSpec deep-copies the parts a caller could mutate after NewTabular,
// so a generator never changes under its users.
func cloneSpec(s *TabularSpec) TabularSpec {
	c := *s
	c.Columns = slices.Clone(s.Columns)
	for i := range c.Columns {
		d := &c.Columns[i].Distribution
		d.Values = slices.Clone(d.Values)
		d.Weights = slices.Clone(d.Weights)
		d.Quantiles = slices.Clone(d.Quantiles)
	}
	c.Correlations = slices.Clone(s.Correlations)
	c.Protected = slices.Clone(s.Protected)
	return c
}

func compileColumn(c ColumnSpec, latent int) tabColumn {
	d := c.Distribution
	t := tabColumn{name: c.Name, typ: c.Type, kind: d.Kind, latent: latent, lo: math.Inf(-1), hi: math.Inf(1)}
	val := func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	}
	switch d.Kind {
	case DistNormal:
		t.a, t.b = val(d.Mean), val(d.Std)
	case DistLognormal:
		t.a, t.b = val(d.Mu), val(d.Sigma)
	case DistUniform, DistIntUniform:
		t.a, t.b = val(d.Min), val(d.Max)
	case DistBernoulli:
		t.a = val(d.P)
		t.cum = []float64{1 - t.a, 1} // false, true: keeps twins' arity uniform
	case DistPoisson:
		t.cum = poissonCDF(val(d.Lambda))
	case DistCategorical:
		t.strs = slices.Clone(d.Values)
		w := d.Weights
		if w == nil {
			w = make([]float64, len(d.Values))
			for i := range w {
				w[i] = 1
			}
		}
		t.cum = cumulative(w)
		for _, v := range d.Values {
			t.bytes = append(t.bytes, []byte(v))
		}
	case DistEmpirical:
		t.quant = slices.Clone(d.Quantiles)
	}
	if c.Clip != nil {
		if c.Clip.Min != nil {
			t.lo = *c.Clip.Min
		}
		if c.Clip.Max != nil {
			t.hi = *c.Clip.Max
		}
	}
	if c.Round != nil {
		t.roundPow = math.Pow(10, float64(*c.Round))
	}
	return t
}

func cumulative(w []float64) []float64 {
	var sum float64
	for _, x := range w {
		sum += x
	}
	cum := make([]float64, len(w))
	var acc float64
	for i, x := range w {
		acc += x
		cum[i] = acc / sum
	}
	cum[len(cum)-1] = 1 // no gap above the last category from rounding
	return cum
}

// poissonCDF tabulates the CDF until the remaining tail is negligible, so
// inversion is a binary search; gonum's distuv.Poisson supplies the masses.
func poissonCDF(lambda float64) []float64 {
	p := distuv.Poisson{Lambda: lambda}
	limit := int(lambda + 12*math.Sqrt(lambda) + 30)
	cum := make([]float64, 0, limit+1)
	var acc float64
	for k := 0; k <= limit; k++ {
		acc += p.Prob(float64(k))
		cum = append(cum, math.Min(acc, 1))
		if acc >= 1-1e-15 {
			break
		}
	}
	cum[len(cum)-1] = 1
	return cum
}

// searchCum returns the first index whose cumulative probability is > u.
func searchCum(cum []float64, u float64) int {
	i, _ := slices.BinarySearch(cum, u)
	for i < len(cum)-1 && cum[i] <= u {
		i++
	}
	return min(i, len(cum)-1)
}

// unitNormal is gonum's standard normal; Φ maps latent values to uniforms.
var unitNormal = distuv.UnitNormal

// value draws column c: from the latent normal z when the column is in the
// copula, otherwise from its own uniform/normal draw. Categories return
// their index; bools 0 or 1.
func (c *tabColumn) value(r *rand.Rand, z float64, correlated bool) float64 {
	var x float64
	switch c.kind {
	case DistNormal:
		if !correlated {
			z = r.NormFloat64()
		}
		x = c.a + c.b*z
	case DistLognormal:
		if !correlated {
			z = r.NormFloat64()
		}
		x = math.Exp(c.a + c.b*z)
	default:
		var u float64
		if correlated {
			u = unitNormal.CDF(z)
		} else {
			u = r.Float64()
		}
		switch c.kind {
		case DistUniform:
			x = c.a + (c.b-c.a)*u
		case DistIntUniform:
			x = math.Min(c.a+math.Floor((c.b-c.a+1)*u), c.b)
		case DistPoisson, DistCategorical, DistBernoulli:
			x = float64(searchCum(c.cum, u))
		case DistEmpirical:
			x = interpQuantile(c.quant, u)
		}
	}
	switch c.typ {
	case ColumnInt:
		x = math.Round(x)
	case ColumnFloat:
		if c.roundPow != 0 {
			x = math.Round(x*c.roundPow) / c.roundPow
		}
	}
	// Plain comparisons: math.Max/Min handle NaN and signed zeros, which
	// cannot occur here, at several times the cost.
	if x < c.lo {
		x = c.lo
	}
	if x > c.hi {
		x = c.hi
	}
	return x
}

// interpQuantile reads equally spaced quantiles q (probabilities 0..1) at u
// with linear interpolation, i.e. the inverse of a piecewise-linear CDF.
func interpQuantile(q []float64, u float64) float64 {
	pos := u * float64(len(q)-1)
	i := int(pos)
	if i >= len(q)-1 {
		return q[len(q)-1]
	}
	f := pos - float64(i)
	return q[i] + f*(q[i+1]-q[i])
}

// rowState is the per-goroutine scratch space of generation.
type rowState struct {
	src  rand.PCG
	r    *rand.Rand
	z    []float64
	corr []float64
}

func (g *TabularGenerator) newState() *rowState {
	st := &rowState{z: make([]float64, len(g.latent)), corr: make([]float64, len(g.latent))}
	st.r = rand.New(&st.src)
	return st
}

// base fills cells with original row i of seed. Re-seeding the PCG from
// (seed, i) makes the row independent of every other row, which is what
// lets shards be generated anywhere in any order with identical output.
func (g *TabularGenerator) base(st *rowState, seed uint64, i int64, cells []float64) {
	st.src.Seed(mix64(seed^tabularStream), mix64(uint64(i)+mix64(seed)))
	k := len(g.latent)
	for j := range st.z {
		st.z[j] = st.r.NormFloat64()
	}
	for a := 0; a < k; a++ {
		row := g.chol[a*k : a*k+a+1]
		var s float64
		for b, l := range row {
			s += l * st.z[b]
		}
		st.corr[a] = s
	}
	for j := range g.cols {
		c := &g.cols[j]
		if c.latent >= 0 {
			cells[j] = c.value(st.r, st.corr[c.latent], true)
		} else {
			cells[j] = c.value(st.r, 0, false)
		}
	}
}

// RowsPerOriginal is 1 plus the twins of each original row: the factor
// between original rows requested and rows written.
func (g *TabularGenerator) RowsPerOriginal() int64 { return 1 + int64(g.twins) }

// Spec returns a copy of the compiled spec.
func (g *TabularGenerator) Spec() TabularSpec { return cloneSpec(&g.spec) }

// Schema is the Parquet schema of the files WriteParquet writes.
func (g *TabularGenerator) Schema() *parquet.Schema { return g.schema }

// Params renders what a manifest needs to regenerate the data besides the
// seed: the spec's hash and the twin setting.
func (g *TabularGenerator) Params() (map[string]string, error) {
	b, err := g.spec.Encode()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return map[string]string{
		"spec":          g.spec.Name,
		"spec_sha256":   hex.EncodeToString(sum[:]),
		"twins":         strconv.FormatBool(!g.noTwins),
		"rows_per_orig": strconv.FormatInt(g.RowsPerOriginal(), 10),
	}, nil
}

// forEach calls fn for original rows offset..offset+n-1 and their twins
// with (id, twinOf, flipped index into flipNames, cells); cells is reused.
func (g *TabularGenerator) forEach(seed uint64, offset, n int64, fn func(id, twinOf int64, flip int, cells []float64) bool) {
	st := g.newState()
	cells := make([]float64, len(g.cols))
	twin := make([]float64, len(g.cols))
	per := g.RowsPerOriginal()
	for i := offset; i < offset+n; i++ {
		g.base(st, seed, i, cells)
		id := i * per
		if !fn(id, -1, 0, cells) {
			return
		}
		next := id + 1
		for p, j := range g.protected {
			if g.noTwins {
				break
			}
			k := len(g.cols[j].cum)
			orig := int(cells[j])
			// Every alternative value once, in a fixed order, so the twin
			// set is complete and deterministic.
			for a := 1; a < k; a++ {
				copy(twin, cells)
				twin[j] = float64((orig + a) % k)
				if !fn(next, id, p+1, twin) {
					return
				}
				next++
			}
		}
	}
}

// Rows streams original rows offset..offset+n-1 for seed, each followed by
// its twins. Row i depends only on (spec, seed, i).
func (g *TabularGenerator) Rows(seed uint64, offset, n int64) iter.Seq[TabularRow] {
	return func(yield func(TabularRow) bool) {
		g.forEach(seed, offset, n, func(id, twinOf int64, flip int, cells []float64) bool {
			row := TabularRow{ID: id, TwinOf: twinOf, FlippedAttribute: string(g.flipNames[flip]), Values: make([]any, len(cells))}
			for j, x := range cells {
				row.Values[j] = g.cols[j].decode(x)
			}
			return yield(row)
		})
	}
}

func (c *tabColumn) decode(x float64) any {
	switch c.typ {
	case ColumnInt:
		return int64(x)
	case ColumnCategory:
		return c.strs[int(x)]
	case ColumnBool:
		return x != 0
	}
	return x
}

// tabularSchema builds the Parquet schema from a struct type made at run
// time: parquet.Group would sort columns by name, a struct keeps the
// spec's order, which is what notebook users see.
func tabularSchema(cols []tabColumn) *parquet.Schema {
	fields := []reflect.StructField{
		{Name: "F_id", Type: reflect.TypeFor[int64](), Tag: `parquet:"id"`},
		{Name: "F_twin_of", Type: reflect.TypeFor[*int64](), Tag: `parquet:"twin_of,optional"`},
		{Name: "F_flipped_attribute", Type: reflect.TypeFor[string](), Tag: `parquet:"flipped_attribute,dict"`},
	}
	for i, c := range cols {
		f := reflect.StructField{Name: fmt.Sprintf("F%d", i), Tag: reflect.StructTag(fmt.Sprintf(`parquet:%q`, c.name))}
		switch c.typ {
		case ColumnInt:
			f.Type = reflect.TypeFor[int64]()
		case ColumnFloat:
			f.Type = reflect.TypeFor[float64]()
		case ColumnCategory:
			f.Type = reflect.TypeFor[string]()
			f.Tag = reflect.StructTag(fmt.Sprintf(`parquet:%q`, c.name+",dict"))
		case ColumnBool:
			f.Type = reflect.TypeFor[bool]()
		}
		fields = append(fields, f)
	}
	return parquet.SchemaOf(reflect.New(reflect.StructOf(fields)).Elem().Interface())
}

// fillRow encodes one row as Parquet values in schema (column) order.
func (g *TabularGenerator) fillRow(dst parquet.Row, id, twinOf int64, flip int, cells []float64) {
	dst[colID] = parquet.Int64Value(id).Level(0, 0, colID)
	if twinOf < 0 {
		dst[colTwinOf] = parquet.NullValue().Level(0, 0, colTwinOf)
	} else {
		dst[colTwinOf] = parquet.Int64Value(twinOf).Level(0, 1, colTwinOf)
	}
	dst[colFlipped] = parquet.ByteArrayValue(g.flipNames[flip]).Level(0, 0, colFlipped)
	for j, x := range cells {
		col := nLeading + j
		var v parquet.Value
		switch g.cols[j].typ {
		case ColumnInt:
			v = parquet.Int64Value(int64(x))
		case ColumnFloat:
			v = parquet.DoubleValue(x)
		case ColumnCategory:
			v = parquet.ByteArrayValue(g.cols[j].bytes[int(x)])
		case ColumnBool:
			v = parquet.BooleanValue(x != 0)
		}
		dst[col] = v.Level(0, 0, col)
	}
}

// tabBatch is a reusable block of rows handed between goroutines.
type tabBatch struct {
	rows []parquet.Row
	vals []parquet.Value
	n    int
}

func (g *TabularGenerator) newBatch() *tabBatch {
	w := nLeading + len(g.cols)
	per := int(g.RowsPerOriginal())
	size := max(tabularBatchRows/per, 1) * per // whole twin groups per batch
	b := &tabBatch{rows: make([]parquet.Row, size), vals: make([]parquet.Value, size*w)}
	for i := range b.rows {
		b.rows[i] = b.vals[i*w : (i+1)*w : (i+1)*w]
	}
	return b
}

// WriteParquet writes original rows offset..offset+n-1 of seed, with their
// twins, to a zstd Parquet file at path and returns its stats. Generation
// runs on a second goroutine, a batch ahead of the writer, so on two or more
// cores the writer is the only bottleneck. Memory is bounded by one row
// group plus three batches. Like WriteFile the file appears atomically and
// its bytes are a pure function of (spec, options, seed, offset, n, opts).
func (g *TabularGenerator) WriteParquet(ctx context.Context, path string, seed uint64, offset, n int64, opts WriteOptions) (stats FileStats, err error) {
	fail := func(err error) (FileStats, error) {
		return FileStats{}, fmt.Errorf("datasets: write tabular %s: %w", path, err)
	}
	if offset < 0 || n < 0 {
		return fail(fmt.Errorf("offset %d and n %d must be >= 0", offset, n))
	}
	if offset > math.MaxInt64/g.RowsPerOriginal()-n {
		return fail(fmt.Errorf("offset %d + n %d overflows row ids", offset, n))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	stats, err = writeAtomic(path, opts, DefaultTabularRowGroupRows, []parquet.WriterOption{g.schema}, func(out io.Writer, wopts []parquet.WriterOption) (int64, error) {
		w := parquet.NewWriter(out, wopts...)
		written, err := g.pipeline(ctx, seed, offset, n, func(rows []parquet.Row) error {
			_, err := w.WriteRows(rows)
			return err
		})
		if err != nil {
			return written, err
		}
		return written, w.Close()
	})
	if err != nil {
		return fail(err)
	}
	return stats, nil
}

// pipeline generates batches on its own goroutine and calls write for each
// on the caller's. Three batches circulate: one being filled, one queued,
// one being written.
func (g *TabularGenerator) pipeline(ctx context.Context, seed uint64, offset, n int64, write func([]parquet.Row) error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const inFlight = 3
	free := make(chan *tabBatch, inFlight)
	full := make(chan *tabBatch, inFlight)
	for range inFlight {
		free <- g.newBatch()
	}
	go func() {
		defer close(full)
		var b *tabBatch
		send := func() bool {
			select {
			case full <- b:
				b = nil
				return true
			case <-ctx.Done():
				return false
			}
		}
		g.forEach(seed, offset, n, func(id, twinOf int64, flip int, cells []float64) bool {
			if b == nil {
				select {
				case b = <-free:
					b.n = 0
				case <-ctx.Done():
					return false
				}
			}
			g.fillRow(b.rows[b.n], id, twinOf, flip, cells)
			b.n++
			if b.n == len(b.rows) {
				return send()
			}
			return true
		})
		if b != nil && b.n > 0 {
			send()
		}
	}()
	var written int64
	for b := range full {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		if err := write(b.rows[:b.n]); err != nil {
			return written, fmt.Errorf("after %d rows: %w", written, err)
		}
		written += int64(b.n)
		free <- b
	}
	// The producer also stops on cancellation; report it rather than a
	// short file.
	if err := ctx.Err(); err != nil {
		return written, err
	}
	return written, nil
}

// TabularDatasetOptions configures WriteTabularDataset.
type TabularDatasetOptions struct {
	// Seed overrides the spec's seed when non-zero.
	Seed uint64
	// Rows is the number of original rows (twins come on top).
	Rows int64
	// Shards splits the rows into this many part files (default 1); shard
	// s holds originals [s·Rows/Shards, (s+1)·Rows/Shards), the same split
	// an activity per shard uses.
	Shards int
	// KeyPrefix is prepended to part names in the manifest (e.g. the
	// dataset's S3 prefix); empty keeps bare file names.
	KeyPrefix string
	Tabular   TabularOptions
	Write     WriteOptions
}

// WriteTabularDataset validates everything first, then writes the part
// files and manifest.json into dir. A bad spec or option leaves dir
// untouched: nothing is created before validation passes.
func WriteTabularDataset(ctx context.Context, spec *TabularSpec, dir string, o TabularDatasetOptions) (Manifest, error) {
	g, err := NewTabular(spec, o.Tabular)
	if err != nil {
		return Manifest{}, err
	}
	shards := o.Shards
	if shards == 0 {
		shards = 1
	}
	switch {
	case o.Rows < 0:
		return Manifest{}, fmt.Errorf("datasets: tabular dataset: rows %d must be >= 0", o.Rows)
	case shards < 1 || shards > 99999:
		return Manifest{}, fmt.Errorf("datasets: tabular dataset: shards %d out of range 1..99999", shards)
	}
	seed := o.Seed
	if seed == 0 {
		seed = spec.Seed
	}
	params, err := g.Params()
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{SchemaVersion: ManifestSchemaVersion, Dataset: spec.Name, Generator: TabularGeneratorName,
		GeneratorVersion: TabularGeneratorVersion, Seed: seed, Params: params}
	meta := map[string]string{"generator": TabularGeneratorName, "generator_version": TabularGeneratorVersion,
		"seed": strconv.FormatUint(seed, 10), "spec_sha256": params["spec_sha256"]}
	for k, v := range o.Write.Metadata {
		meta[k] = v
	}
	wo := o.Write
	wo.Metadata = meta
	for s := range shards {
		lo := o.Rows * int64(s) / int64(shards)
		hi := o.Rows * int64(s+1) / int64(shards)
		name := fmt.Sprintf("part-%05d.parquet", s)
		st, err := g.WriteParquet(ctx, filepath.Join(dir, name), seed, lo, hi-lo, wo)
		if err != nil {
			return Manifest{}, err
		}
		m.AddFile(o.KeyPrefix+name, st)
	}
	b, err := m.Marshal()
	if err != nil {
		return Manifest{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		return Manifest{}, fmt.Errorf("datasets: tabular dataset: write manifest: %w", err)
	}
	return m, nil
}
