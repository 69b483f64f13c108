/* jazzd.model._memory: the session memory's per-step arithmetic, compiled.
 *
 * What `jazzd.model.memory.SessionMemory.mix` does at every value jazzd plays: find the
 * moments of the player's that match the context (`predict`), and mix what followed
 * them into the model's distribution (`blend`).  Written in Python and numpy it was ~40
 * numpy calls on arrays of a few hundred numbers, and a beat's other work evicts those
 * arrays from the cache between calls: 90-150 us a value played, the largest part of a
 * beat's cost with the memory on (issue 12, item 6).  Here it is one pass each.
 *
 * The same floats as the numpy formulation, bit for bit (tests/memory_reference.py
 * keeps that formulation; tests/test_memory_compiled.py compares the two): every sum is
 * taken in the order numpy takes it (bincount's: in the order of the moments; reduceat's
 * over float32: numpy's pairwise summation, `pairwise_f32`), and the build turns off
 * floating-point contraction (-ffp-contract=off: no fused multiply-add), so the draws,
 * the golden logs and the report's figures do not move.
 *
 * The layout is the memory's (see memory.py): `flat` the (views, columns) array of
 * classes read flat, -1 a break; `table` (views, values) each value's class per view,
 * numbered across the views; the occurrence index an arena of int32 places with each
 * class's start and count.  Every index read from an array is checked before it is
 * used (IndexError: a bug in the caller, never a crash of the daemon).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

#define NVIEWS 5
#define ORDER 8
#define RECENT 32
#define STRIDE (ORDER + 1)
#define MAXM (NVIEWS * RECENT)

/* numpy's floats need IEEE arithmetic as written: no fused a * b + c (setup.py passes
   -ffp-contract=off and defines JAZZD_CONTRACT_OFF beside it), no reordering of sums
   (-ffast-math, -Ofast), no wider intermediate precision (x87) */
#if defined(__FP_FAST_FMA) && !defined(JAZZD_CONTRACT_OFF)
#error "build jazzd.model._memory with -ffp-contract=off (see setup.py)"
#endif
#if defined(__FAST_MATH__) || !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "build jazzd.model._memory without -ffast-math and with SSE2 (or another IEEE single/double) arithmetic"
#endif

/* --- buffers ------------------------------------------------------------------------ */

/* kind: 'i' a signed integer of `size` bytes (0: 2 or 4), 'f' a float of `size` bytes,
   '?' a bool */
static int
get_buffer(PyObject *obj, Py_buffer *view, int writable, char kind, Py_ssize_t size, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    const char *f = view->format && view->format[0] ? view->format : "B";
    char c = f[strlen(f) - 1];
    int ok = (size ? view->itemsize == size : view->itemsize == 2 || view->itemsize == 4) &&
             (kind == 'f' ? (c == 'f' || c == 'd') : kind == '?' ? c == '?' : strchr("bhilqn", c) != NULL);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %s array of %zd-byte items, got format '%s'",
                     name, kind == 'f' ? "float" : kind == '?' ? "bool" : "signed integer", size, f);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static inline long
read_int(const Py_buffer *b, Py_ssize_t i)
{
    return b->itemsize == 2 ? ((const int16_t *)b->buf)[i] : ((const int32_t *)b->buf)[i];
}

static int
int_items(PyObject *seq, long *out, Py_ssize_t n, const char *name)
{
    /* a tuple or list of exactly n ints */
    if (!(PyTuple_Check(seq) || PyList_Check(seq)) || PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_TypeError, "%s: expected a tuple or list of %zd ints", name, n);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsLong(items[i]);
        if (out[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static int
wrong_count(const char *function, Py_ssize_t nargs, Py_ssize_t want)
{
    if (nargs == want)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", function, want, nargs);
    return 1;
}

static PyObject *
index_error(const char *what)
{
    PyErr_Format(PyExc_IndexError, "session memory: %s out of range (its index and arrays disagree)", what);
    return NULL;
}

/* --- predict ------------------------------------------------------------------------ */

PyDoc_STRVAR(predict_doc,
"predict(flat, table, context, arena, starts, counts, classes, offsets, best, q, view, at, match, cont)\n"
"\n"
"The memory's next-class distribution for `context` (a tuple of at most ORDER value ids,\n"
"oldest first): the moments are the latest RECENT places of each of `classes` (the\n"
"context's last value in each view) in the occurrence index (`arena`, per class its\n"
"`starts` and `counts`); each moment's match is how many of the context's last values\n"
"agree with the values up to it (0 when a break followed it), its continuation the class\n"
"that followed it (a break: its view's first class, `offsets`).  Per view a Witten-Bell\n"
"mixture over the orders 1..its longest match.  Writes q (float64, every class), the\n"
"moments' view, place, match and continuation, and returns (moments, longest match per\n"
"view), or None when no moment continued anything.  `best` (intp, every class) is\n"
"scratch, kept zero.");

static PyObject *
predict(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (wrong_count("predict", nargs, 14))
        return NULL;
    Py_buffer flat = {0}, table = {0}, arena = {0}, best = {0}, q = {0};
    Py_buffer fview = {0}, fat = {0}, fmatch = {0}, fcont = {0};
    PyObject *result = NULL;
    long context[ORDER], classes[NVIEWS], offsets[NVIEWS + 1];

    PyObject *ctx = args[2], *starts = args[4], *counts = args[5];
    Py_ssize_t k = (PyTuple_Check(ctx) || PyList_Check(ctx)) ? PySequence_Fast_GET_SIZE(ctx) : -1;
    if (k < 1 || k > ORDER) {
        PyErr_Format(PyExc_ValueError, "context: expected a tuple of 1 to %d value ids", ORDER);
        return NULL;
    }
    if (int_items(ctx, context, k, "context") < 0 || int_items(args[6], classes, NVIEWS, "classes") < 0 ||
        int_items(args[7], offsets, NVIEWS + 1, "offsets") < 0)
        return NULL;
    if (!PyList_Check(starts) || !PyList_Check(counts) || PyList_GET_SIZE(starts) != PyList_GET_SIZE(counts)) {
        PyErr_SetString(PyExc_TypeError, "starts, counts: expected two lists of one length");
        return NULL;
    }
    if (get_buffer(args[0], &flat, 0, 'i', 0, "flat") < 0) goto done;
    const Py_ssize_t itemsize = flat.itemsize;  /* int16 while every class number fits, else int32 */
    if (get_buffer(args[1], &table, 0, 'i', itemsize, "table") < 0) goto done;
    if (get_buffer(args[3], &arena, 0, 'i', 4, "arena") < 0) goto done;
    if (get_buffer(args[8], &best, 1, 'i', sizeof(Py_ssize_t), "best") < 0) goto done;
    if (get_buffer(args[9], &q, 1, 'f', 8, "q") < 0) goto done;
    if (get_buffer(args[10], &fview, 1, 'i', sizeof(Py_ssize_t), "view") < 0) goto done;
    if (get_buffer(args[11], &fat, 1, 'i', sizeof(Py_ssize_t), "at") < 0) goto done;
    if (get_buffer(args[12], &fmatch, 1, 'i', sizeof(Py_ssize_t), "match") < 0) goto done;
    if (get_buffer(args[13], &fcont, 1, 'i', sizeof(Py_ssize_t), "cont") < 0) goto done;

    const Py_ssize_t nflat = flat.len / itemsize, nvalues = table.len / itemsize / NVIEWS;
    const Py_ssize_t total = q.len / 8, nclasses = PyList_GET_SIZE(starts);
    const int32_t *places = (const int32_t *)arena.buf;
    const Py_ssize_t nplaces = arena.len / 4;
    Py_ssize_t *bestv = (Py_ssize_t *)best.buf;
    Py_ssize_t *view = (Py_ssize_t *)fview.buf, *at = (Py_ssize_t *)fat.buf;
    Py_ssize_t *match = (Py_ssize_t *)fmatch.buf, *cont = (Py_ssize_t *)fcont.buf;
    double *qv = (double *)q.buf;
    if (best.len / (Py_ssize_t)sizeof(Py_ssize_t) != total || fview.len < MAXM * (Py_ssize_t)sizeof(Py_ssize_t) ||
        fat.len != fview.len || fmatch.len != fview.len || fcont.len != fview.len || nclasses != total) {
        PyErr_SetString(PyExc_ValueError, "predict: scratch arrays of the wrong size");
        goto done;
    }
    if (offsets[0] != 0 || offsets[NVIEWS] != total) {
        PyErr_SetString(PyExc_ValueError, "predict: the views' offsets must run from 0 to the number of classes");
        goto done;
    }
    for (int v = 0; v < NVIEWS; v++)
        if (offsets[v] >= offsets[v + 1]) {
            PyErr_SetString(PyExc_ValueError, "predict: every view must have a class");
            goto done;
        }
    for (Py_ssize_t j = 0; j < k; j++)
        if (context[j] < 0 || context[j] >= nvalues) { index_error("a context value id"); goto done; }

    /* the moments: per view the latest RECENT places of the context's last value's class */
    Py_ssize_t m = 0;
    for (int v = 0; v < NVIEWS; v++) {
        long g = classes[v];
        if (g < offsets[v] || g >= offsets[v + 1]) { index_error("a class"); goto done; }
        const long start = PyLong_AsLong(PyList_GET_ITEM(starts, g));
        if (start == -1 && PyErr_Occurred()) goto done;
        const long n = PyLong_AsLong(PyList_GET_ITEM(counts, g));
        if (n == -1 && PyErr_Occurred()) goto done;
        if (start < 0 || n < 0 || start > nplaces || n > nplaces - start) { index_error("an occurrence slice"); goto done; }
        for (long i = n > RECENT ? n - RECENT : 0; i < n; i++) {
            view[m] = v;
            at[m++] = places[start + i];
        }
    }
    if (m == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }

    /* each moment's match and continuation; per (view, match) slot how many moments
       (at_least) and, per class, the highest slot it reached (bestv) */
    long at_least[NVIEWS * STRIDE] = {0}, distinct[NVIEWS * STRIDE] = {0};
    Py_ssize_t marked = 0;  /* the moments whose class `bestv` holds: zeroed again on an error */
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t place = at[i], v = view[i];
        if (place - (k - 1) < 0 || place + 1 >= nflat) { index_error("a place"); goto unmark; }
        long next = read_int(&flat, place + 1);
        long len = 0;  /* (a break followed it: it continued nothing, match 0) */
        if (next >= 0) {
            len = 1;
            const Py_ssize_t row = v * nvalues;
            while (len < k && read_int(&flat, place - len) == read_int(&table, row + context[k - 1 - len]))
                len++;
        }
        long c = next > offsets[v] ? next : offsets[v];
        if (c >= offsets[v + 1]) { index_error("a continuation's class"); goto unmark; }
        long slot = v * STRIDE + len;
        match[i] = len;
        cont[i] = c;
        at_least[slot]++;
        if (bestv[c] < slot)
            bestv[c] = slot;
        marked = i + 1;
    }
    for (Py_ssize_t i = 0; i < m; i++) {  /* each class once: the slot it reached */
        Py_ssize_t c = cont[i];
        if (bestv[c]) {
            if (bestv[c] < 0 || bestv[c] >= NVIEWS * STRIDE) {  /* (scratch that was not zero) */
                index_error("a slot in the scratch");
                goto unmark;
            }
            distinct[bestv[c]]++;
            bestv[c] = 0;
        }
    }

    /* Witten-Bell per view: order j trusted by n / (n + d), n the moments matched for at
       least j values, d the distinct classes after them; a moment matched for L values
       weighs the sum of the coefficients of the orders 1..L (as memory.py's loop) */
    double weight[NVIEWS * STRIDE] = {0};
    long longest[NVIEWS] = {0};
    int any = 0;
    for (int v = 0; v < NVIEWS; v++) {
        const int base = v * STRIDE;
        long n = 0, d = 0;
        double left = 1.0, coef[STRIDE] = {0};
        for (int j = ORDER; j > 0; j--) {
            n += at_least[base + j];
            if (n == 0)
                continue;
            d += distinct[base + j];
            if (!longest[v])
                longest[v] = j;
            double trust = j == 1 ? 1.0 : (double)n / (double)(n + d);
            coef[j] = trust * left / (double)n;
            left *= 1.0 - trust;
        }
        double acc = 0.0;
        for (int j = 1; j <= longest[v]; j++) {
            acc += coef[j];
            weight[base + j] = acc;
        }
        any |= longest[v] != 0;
    }
    if (!any) {  /* a break followed every moment */
        result = Py_NewRef(Py_None);
        goto done;
    }
    memset(qv, 0, total * sizeof(double));
    for (Py_ssize_t i = 0; i < m; i++)  /* (bincount's order: moment after moment) */
        qv[cont[i]] += weight[view[i] * STRIDE + match[i]];
    result = Py_BuildValue("n(lllll)", m, longest[0], longest[1], longest[2], longest[3], longest[4]);
    goto done;

unmark:  /* an error in the moments: `bestv` is scratch the next call counts on being zero */
    for (Py_ssize_t i = 0; i < marked; i++)
        bestv[cont[i]] = 0;
done:
    PyBuffer_Release(&flat);
    PyBuffer_Release(&table);
    PyBuffer_Release(&arena);
    PyBuffer_Release(&best);
    PyBuffer_Release(&q);
    PyBuffer_Release(&fview);
    PyBuffer_Release(&fat);
    PyBuffer_Release(&fmatch);
    PyBuffer_Release(&fcont);
    return result;
}

/* --- blend -------------------------------------------------------------------------- */

/* numpy's pairwise summation of float32 (loops_utils.h: FLOAT_pairwise_sum), as
   np.add.reduceat sums a segment after its first item */
static float
pairwise_f32(const float *a, Py_ssize_t n)
{
    if (n < 8) {
        float res = 0.0f;
        for (Py_ssize_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        float r[8];
        Py_ssize_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_f32(a, n2) + pairwise_f32(a + n2, n - n2);
}

PyDoc_STRVAR(blend_doc,
"blend(probs, q, lam, keep, members, starts, coarse, coarse_view, gathered, mass, share, out)\n"
"\n"
"out = keep * probs + lam[0] * q[:V] + per value the coarse views' shares: each coarse\n"
"class's lam[view] * q, spread over its values (`members`, from `starts`) in proportion to\n"
"probs.  probs float32 (V); q float64 (every class); members, starts, coarse (views - 1, V:\n"
"each value's coarse classes) and coarse_view int32; gathered (float32, views - 1 times V),\n"
"mass (float32) and share (float64, one per coarse class) are scratch.");

static PyObject *
blend(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (wrong_count("blend", nargs, 12))
        return NULL;
    Py_buffer probs = {0}, q = {0}, members = {0}, starts = {0}, coarse = {0}, coarse_view = {0};
    Py_buffer gathered = {0}, mass = {0}, share = {0}, out = {0};
    PyObject *result = NULL;
    double lam[NVIEWS];
    PyObject *lams = args[2];
    if (!(PyTuple_Check(lams) || PyList_Check(lams)) || PySequence_Fast_GET_SIZE(lams) != NVIEWS) {
        PyErr_Format(PyExc_TypeError, "lam: expected %d floats", NVIEWS);
        return NULL;
    }
    for (int v = 0; v < NVIEWS; v++) {
        lam[v] = PyFloat_AsDouble(PySequence_Fast_ITEMS(lams)[v]);
        if (lam[v] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    const double keep = PyFloat_AsDouble(args[3]);
    if (keep == -1.0 && PyErr_Occurred())
        return NULL;
    if (get_buffer(args[0], &probs, 0, 'f', 4, "probs") < 0) goto done;
    if (get_buffer(args[1], &q, 0, 'f', 8, "q") < 0) goto done;
    if (get_buffer(args[4], &members, 0, 'i', 4, "members") < 0) goto done;
    if (get_buffer(args[5], &starts, 0, 'i', 4, "starts") < 0) goto done;
    if (get_buffer(args[6], &coarse, 0, 'i', 4, "coarse") < 0) goto done;
    if (get_buffer(args[7], &coarse_view, 0, 'i', 4, "coarse_view") < 0) goto done;
    if (get_buffer(args[8], &gathered, 1, 'f', 4, "gathered") < 0) goto done;
    if (get_buffer(args[9], &mass, 1, 'f', 4, "mass") < 0) goto done;
    if (get_buffer(args[10], &share, 1, 'f', 8, "share") < 0) goto done;
    if (get_buffer(args[11], &out, 1, 'f', 8, "out") < 0) goto done;

    const Py_ssize_t V = probs.len / 4, nq = q.len / 8, nm = members.len / 4, nc = starts.len / 4;
    const float *p = (const float *)probs.buf;
    const double *qv = (const double *)q.buf;
    const int32_t *mem = (const int32_t *)members.buf, *st = (const int32_t *)starts.buf;
    const int32_t *co = (const int32_t *)coarse.buf, *cv = (const int32_t *)coarse_view.buf;
    float *g = (float *)gathered.buf, *ms = (float *)mass.buf;
    double *sh = (double *)share.buf, *o = (double *)out.buf;
    if (out.len / 8 != V || nq != V + nc || coarse.len / 4 != (NVIEWS - 1) * V || coarse_view.len / 4 != nc ||
        nm != (NVIEWS - 1) * V || gathered.len / 4 != nm || mass.len / 4 != nc || share.len / 8 != nc) {
        PyErr_SetString(PyExc_ValueError, "blend: arrays of the wrong sizes");
        goto done;
    }
    /* the model's mass of each coarse class: its members' probabilities, summed as
       np.add.reduceat(probs.take(members), starts) sums them */
    for (Py_ssize_t i = 0; i < nm; i++) {
        if (mem[i] < 0 || mem[i] >= V) { index_error("a coarse class's member"); goto done; }
        g[i] = p[mem[i]];
    }
    const float tiny = 1.40129846e-45f;  /* float32's smallest subnormal (memory._TINY) */
    for (Py_ssize_t c = 0; c < nc; c++) {
        const Py_ssize_t lo = st[c], hi = c + 1 < nc ? st[c + 1] : nm;
        if (lo < 0 || hi > nm || lo >= hi) { index_error("a coarse class's members"); goto done; }
        float sum = g[lo] + pairwise_f32(g + lo + 1, hi - lo - 1);
        ms[c] = sum >= tiny ? sum : tiny;
        if (cv[c] < 1 || cv[c] >= NVIEWS) { index_error("a coarse class's view"); goto done; }
        sh[c] = qv[V + c] * lam[cv[c]] / (double)ms[c];
    }
    for (Py_ssize_t i = 0; i < V; i++) {
        double spread = 0.0;
        for (int r = 0; r < NVIEWS - 1; r++) {  /* (the sum over the views' axis, row after row) */
            const int32_t c = co[r * V + i];
            if (c < 0 || c >= nc) { index_error("a value's coarse class"); goto done; }
            spread = r ? spread + sh[c] : sh[c];
        }
        o[i] = ((double)p[i] * keep + qv[i] * lam[0]) + spread * (double)p[i];
    }
    result = Py_NewRef(Py_None);

done:
    PyBuffer_Release(&probs);
    PyBuffer_Release(&q);
    PyBuffer_Release(&members);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&coarse);
    PyBuffer_Release(&coarse_view);
    PyBuffer_Release(&gathered);
    PyBuffer_Release(&mass);
    PyBuffer_Release(&share);
    PyBuffer_Release(&out);
    return result;
}

/* --- hint --------------------------------------------------------------------------- */

PyDoc_STRVAR(hint_doc,
"hint(view, at, match, cont, moments, classes, knows, min_match, width, has_interval, interval)\n"
"\n"
"After `predict` (its moments' view, place, match and continuation, the first `moments`\n"
"of them): among the moments whose continuation is the drawn value's class in its view\n"
"(`classes`, one per view), in a view that knows intervals (`knows`), matched for at least\n"
"`min_match` values, and whose continuation's interval is known (`has_interval`, bool, by\n"
"column), the longest match, then the finer view, then the latest: (its interval, its\n"
"match), or None.");

static PyObject *
hint(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (wrong_count("hint", nargs, 11))
        return NULL;
    Py_buffer fview = {0}, fat = {0}, fmatch = {0}, fcont = {0}, has = {0}, ivl = {0};
    PyObject *result = NULL;
    long classes[NVIEWS], knows[NVIEWS];
    const Py_ssize_t P = sizeof(Py_ssize_t);
    const Py_ssize_t m = PyLong_AsSsize_t(args[4]);
    if (m == -1 && PyErr_Occurred())
        return NULL;
    const long min_match = PyLong_AsLong(args[7]);
    if (min_match == -1 && PyErr_Occurred())
        return NULL;
    const Py_ssize_t width = PyLong_AsSsize_t(args[8]);
    if ((width == -1 && PyErr_Occurred()) || int_items(args[5], classes, NVIEWS, "classes") < 0 ||
        int_items(args[6], knows, NVIEWS, "knows") < 0)
        return NULL;
    if (get_buffer(args[0], &fview, 0, 'i', P, "view") < 0) goto done;
    if (get_buffer(args[1], &fat, 0, 'i', P, "at") < 0) goto done;
    if (get_buffer(args[2], &fmatch, 0, 'i', P, "match") < 0) goto done;
    if (get_buffer(args[3], &fcont, 0, 'i', P, "cont") < 0) goto done;
    if (get_buffer(args[9], &has, 0, '?', 1, "has_interval") < 0) goto done;
    if (get_buffer(args[10], &ivl, 0, 'i', 2, "interval") < 0) goto done;
    if (m < 0 || m > fview.len / P || fat.len != fview.len || fmatch.len != fview.len || fcont.len != fview.len ||
        ivl.len != 2 * has.len || width <= 0) {
        PyErr_SetString(PyExc_ValueError, "hint: arrays of the wrong sizes");
        goto done;
    }
    const Py_ssize_t *view = (const Py_ssize_t *)fview.buf, *at = (const Py_ssize_t *)fat.buf;
    const Py_ssize_t *match = (const Py_ssize_t *)fmatch.buf, *cont = (const Py_ssize_t *)fcont.buf;
    const char *known = (const char *)has.buf;
    Py_ssize_t best = -1, best_view = 0, best_col = 0, best_match = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        const Py_ssize_t v = view[i];
        if (v < 0 || v >= NVIEWS) { index_error("a moment's view"); goto done; }
        if (!knows[v] || match[i] < min_match || cont[i] != classes[v])
            continue;
        const Py_ssize_t col = at[i] - v * width + 1;  /* the continuation's column */
        if (col < 0 || col >= has.len) { index_error("a continuation's column"); goto done; }
        if (!known[col])
            continue;
        if (best < 0 || match[i] > best_match ||
            (match[i] == best_match && (v < best_view || (v == best_view && col > best_col)))) {
            best = i;
            best_view = v;
            best_col = col;
            best_match = match[i];
        }
    }
    result = best < 0 ? Py_NewRef(Py_None)
                       : Py_BuildValue("(in)", (int)((const int16_t *)ivl.buf)[best_col], best_match);

done:
    PyBuffer_Release(&fview);
    PyBuffer_Release(&fat);
    PyBuffer_Release(&fmatch);
    PyBuffer_Release(&fcont);
    PyBuffer_Release(&has);
    PyBuffer_Release(&ivl);
    return result;
}

static PyMethodDef methods[] = {
    {"predict", (PyCFunction)(void (*)(void))predict, METH_FASTCALL, predict_doc},
    {"blend", (PyCFunction)(void (*)(void))blend, METH_FASTCALL, blend_doc},
    {"hint", (PyCFunction)(void (*)(void))hint, METH_FASTCALL, hint_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_memory",
    "The session memory's per-step arithmetic, compiled (see jazzd.model.memory).", -1, methods,
};

PyMODINIT_FUNC
PyInit__memory(void)
{
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL)
        return NULL;
    if (PyModule_AddIntConstant(mod, "NVIEWS", NVIEWS) < 0 || PyModule_AddIntConstant(mod, "ORDER", ORDER) < 0 ||
        PyModule_AddIntConstant(mod, "RECENT", RECENT) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
