# experiments_svg.awk — validation curves as a standalone SVG (plain awk: mawk or gawk).
#
# Input: tab-separated rows "cell <TAB> seed <TAB> step <TAB> value", one per validation
# point, rows of one run together and in step order.  One polyline per (cell, seed): the
# colour names the cell, the dash pattern the seed.  Variables (-v): title, xlabel, ylabel.
#
# The first validation of each run (an untrained model) is often far above the rest; when
# the runs have at least 4 points each, the y axis starts from the second point so the
# differences that matter stay readable, and what lies above is clipped.
BEGIN {
    FS = "\t"
    W = 760; H = 460; L = 70; R = 190; T = 40; B = 50          # size and margins
    pw = W - L - R; ph = H - T - B
    ncol = split("#1f77b4,#ff7f0e,#2ca02c,#d62728,#9467bd,#8c564b", col, ",")
    nk = split("lstm,lnlstm,hyperlstm,lnhyperlstm", known, ",")
    for (i = 1; i <= nk; i++) cellno[known[i]] = i
    ncells = nk
    ndash = split("none,7 4,2 3,10 3 2 3", dash, ",")
    nruns = 0
}
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
function nicestep(range,   e, f, m) {
    if (range <= 0) return 1
    e = 1; while (e * 10 <= range / 5) e *= 10; while (e > range / 5) e /= 10
    f = range / 5 / e
    m = (f < 1.5) ? 1 : (f < 3.5) ? 2 : (f < 7.5) ? 5 : 10
    return m * e
}
function fmt(v, st) { return (st >= 1) ? sprintf("%d", v) : (st >= 0.1) ? sprintf("%.1f", v) : (st >= 0.01) ? sprintf("%.2f", v) : sprintf("%.3f", v) }
NF >= 4 && $3 ~ /^[0-9]+$/ && $4 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ {
    key = $1 "\t" $2
    if (!(key in run)) {
        run[key] = ++nruns; rcell[nruns] = $1; rseed[nruns] = $2; npt[nruns] = 0
        if (!($1 in cellno)) { cellno[$1] = ++ncells }
        if (!($2 in seedno)) { seedno[$2] = ++nseeds }
    }
    r = run[key]; n = ++npt[r]; xs[r, n] = $3 + 0; ys[r, n] = $4 + 0
}
END {
    if (nruns == 0) { print "experiments_svg: no data" > "/dev/stderr"; exit 1 }
    # drawing order: by cell, then seed (insertion sort of run numbers)
    for (r = 1; r <= nruns; r++) ord[r] = r
    for (i = 2; i <= nruns; i++) for (j = i; j > 1; j--) {
        a = ord[j - 1]; b = ord[j]
        if (cellno[rcell[a]] > cellno[rcell[b]] || (cellno[rcell[a]] == cellno[rcell[b]] && seedno[rseed[a]] > seedno[rseed[b]])) { ord[j - 1] = b; ord[j] = a } else break
    }
    minpts = 1e9
    for (r = 1; r <= nruns; r++) if (npt[r] < minpts) minpts = npt[r]
    first = (minpts >= 4) ? 2 : 1
    xmin = 0; xmax = 0; ymin = 1e300; ymax = -1e300
    for (r = 1; r <= nruns; r++) for (i = 1; i <= npt[r]; i++) {
        if (xs[r, i] > xmax) xmax = xs[r, i]
        if (i >= first && ys[r, i] > ymax) ymax = ys[r, i]
        if (ys[r, i] < ymin) ymin = ys[r, i]
    }
    if (xmax <= xmin) xmax = xmin + 1
    if (ymax <= ymin) { ymax = ymin + 0.5; ymin -= 0.5 }
    pad = (ymax - ymin) * 0.04; ymin -= pad; ymax += pad
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H
    printf "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H
    printf "<text x=\"%d\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, esc(title)
    printf "<defs><clipPath id=\"plot\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/></clipPath></defs>\n", L, T, pw, ph
    # grid and ticks
    st = nicestep(ymax - ymin)
    for (v = int(ymin / st) * st; v <= ymax + st * 1e-9; v += st) {
        if (v < ymin - st * 1e-9) continue
        y = T + ph - (v - ymin) / (ymax - ymin) * ph
        printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, L + pw, y
        printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 6, y + 4, fmt(v, st)
    }
    sx = nicestep(xmax - xmin)
    for (v = 0; v <= xmax + sx * 1e-9; v += sx) {
        x = L + (v - xmin) / (xmax - xmin) * pw
        printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, T, x, T + ph
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, T + ph + 16, fmt(v, sx)
    }
    printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", L, T, pw, ph
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, H - 10, esc(xlabel)
    printf "<text x=\"16\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 16 %d)\">%s</text>\n", T + ph / 2, T + ph / 2, esc(ylabel)
    # one polyline per run
    for (q = 1; q <= nruns; q++) {
        r = ord[q]
        c = col[(cellno[rcell[r]] - 1) % ncol + 1]; d = dash[(seedno[rseed[r]] - 1) % ndash + 1]
        pts = ""
        for (i = 1; i <= npt[r]; i++) {
            x = L + (xs[r, i] - xmin) / (xmax - xmin) * pw
            y = T + ph - (ys[r, i] - ymin) / (ymax - ymin) * ph
            pts = pts sprintf("%s%.1f,%.1f", (i > 1 ? " " : ""), x, y)
        }
        printf "<polyline clip-path=\"url(#plot)\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"%s\"><title>%s seed %s</title></polyline>\n", \
            c, (d == "none" ? "" : " stroke-dasharray=\"" d "\""), pts, esc(rcell[r]), esc(rseed[r])
    }
    # legend: one entry per run
    lx = L + pw + 14; ly = T + 6
    for (q = 1; q <= nruns; q++) {
        r = ord[q]
        c = col[(cellno[rcell[r]] - 1) % ncol + 1]; d = dash[(seedno[rseed[r]] - 1) % ndash + 1]
        y = ly + (q - 1) * 18
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", lx, y, lx + 28, y, c, (d == "none" ? "" : " stroke-dasharray=\"" d "\"")
        printf "<text x=\"%d\" y=\"%d\">%s, seed %s</text>\n", lx + 34, y + 4, esc(rcell[r]), esc(rseed[r])
    }
    print "</svg>"
}
