package io.probestream.probes.multiplicity;

import java.util.Arrays;

/**
 * The loops of PROBES.md §3.3 and the scratch space they reuse from sample to sample, so that
 * solving a sample allocates nothing once the arrays have grown to its size. Mutable; owned by one
 * thread at a time (one per batch chunk, or one per {@link RashomonCapacity#of} call).
 *
 * <p>Use: {@link #load} gives a buffer for the raw rows, {@link #checkRow} validates each, {@link
 * #solve} computes; the outcome is then read from {@link #lower}, {@link #upper}, {@link
 * #iterations}, {@link #converged} and {@link #inputDistribution}.
 *
 * <p>§3.3 accepts any method that certifies upper − lower ≤ 1e-8 nats with the bounds it names
 * (I(r) ≤ C ≤ max_m D_m(r) for every input distribution r). The default, {@link Method#NEWTON},
 * takes regularised Newton steps (see {@link #newtonStep}). On near-agreeing members, the common
 * case, it needs about 8 steps where the reference method needs hundreds: on 10,000 samples × 32
 * members × 100 classes, median 8, 90th percentile 10, max 14 against 298, 711 and the cap (reached
 * twice), and 1.7 s of CPU against 24 s. On harder channels (near-copies of a row beside very
 * different rows, zeros) it still certifies within the cap where the reference method often does
 * not. The stopping test, the bounds reported and the cap are the reference method's.
 */
final class CapacitySolver {
  /** Certified gap: upper − lower ≤ this many nats (PROBES.md §0). */
  static final double TOLERANCE = 1e-8;

  /** Accepted steps before giving up (PROBES.md §0). */
  static final int MAX_ITERATIONS = 10_000;

  /**
   * A row is a probability vector if it sums to 1 within this (float32 storage of a float64
   * distribution: within 6e-8). Named in {@link #checkRow}'s message.
   */
  static final double SUM_TOLERANCE = 1e-6;

  /**
   * Entries below this count as 0. That moves C by less than 1e-197 nats, and with {@link #FLOOR}
   * it keeps every r_m·Q_mk a normal double, so q_k > 0 wherever some row has mass and no D_m is
   * infinite.
   */
  static final double TINY = 1e-200;

  /**
   * The smallest input weight. A step can drive a weight to 0 (exp(μ·(D_m − max D)) underflows),
   * and a weight of exactly 0 on the only row with mass in some column would make q_k = 0 and that
   * row's D infinite; a weight at the floor also comes back within a few steps when it has to. It
   * costs the lower bound at most |S|·1e-12·C nats (far below the tolerance); any r gives valid
   * bounds.
   */
  static final double FLOOR = 1e-12;

  /** μ doubles after every accepted step of the reference method; the cap only keeps it finite. */
  static final double MU_MAX = 1e300;

  /** Weights at or below this that do not want to grow are left out of the curvature. */
  static final double SUPPORT = 1e-9;

  /**
   * First ρ, relative to the curvature's scale, itself capped at 1: in log coordinates M's
   * eigenvalues are at most 1 (diag(q)^-½·Qᵀ·diag(r)^½ has non-negative entries and singular value
   * 1 at the positive pair √q, √r), the scale of the plain Blahut–Arimoto step (ρ = 1).
   */
  static final double RHO_START = 0.1;

  /** Smallest ρ, relative to the curvature's scale; keeps ρI + M positive definite. */
  static final double RHO_MIN = 1e-12;

  /** ρ after an accepted step, relative to the ρ that made it. */
  static final double RHO_DOWN = 0.1;

  /** ρ after a rejected step, relative to the ρ that made it. */
  static final double RHO_UP = 4;

  /** Which loop {@link #solve} runs. */
  enum Method {
    /** PROBES.md §3.3 as written: over-relaxed Blahut–Arimoto. */
    REFERENCE,
    /** Regularised Newton steps ({@link #newtonStep}), falling back to the plain step. */
    NEWTON
  }

  private final Method method;
  private int rowCapacity;
  private int colCapacity;
  private double[] raw = new double[0]; // rows × cols as loaded, row-major
  private double[] qm = new double[0]; // distinct rows × varying columns, row-major
  private double[] qt = new double[0]; // the same, column-major (the D loop runs along rows)
  private int[] distinctOf = new int[0]; // loaded row → its distinct row, −1 if dropped
  private int[] column = new int[0]; // varying column j → its loaded column
  private double[] negEntropy = new double[0]; // Σ_k Q_mk ln Q_mk of each distinct row
  private double[] r = new double[0];
  private double[] rTry = new double[0];
  private double[] d = new double[0];
  private double[] dTry = new double[0];
  private double[] acc = new double[0];
  private double[] q = new double[0]; // q = rᵀQ
  private double[] qTry = new double[0];
  private double[] v = new double[0];
  private double[] w = new double[0];
  private int[] member = new int[0]; // included member a → its distinct row
  private boolean[] linear = new boolean[0]; // included member a is in linear coordinates
  private double[] sigma = new double[0]; // σ_a of included member a
  private int included;
  private double[] f = new double[0]; // included × varying columns: E_m = (Q_m − q)/√q
  private double[] curv = new double[0]; // included × included: M, lower triangle
  private double[] chol = new double[0]; // its Cholesky factor with ρ added
  private double[] lq = new double[0];

  private int rows;
  private int distinct;

  /** The certified lower bound I(r) ≥ 0 of the last {@link #solve}, in nats. */
  double lower;

  /** The upper bound max_m D_m(r) ≥ {@link #lower} of the last {@link #solve}, in nats. */
  double upper;

  /** Accepted steps of the last {@link #solve}. */
  int iterations;

  /** Whether the last {@link #solve} certified upper − lower ≤ {@link #TOLERANCE}. */
  boolean converged;

  CapacitySolver() {
    this(Method.NEWTON);
  }

  CapacitySolver(Method method) {
    this.method = method;
  }

  /**
   * A buffer for {@code rows} × {@code cols} raw probabilities, row-major, valid until the next
   * call. The caller fills it completely, then calls {@link #checkRow} for every row.
   */
  double[] load(int rows, int cols) {
    if (rows > rowCapacity || cols > colCapacity) {
      rowCapacity = Math.max(rows, rowCapacity);
      colCapacity = Math.max(cols, colCapacity);
      int cells = rowCapacity * colCapacity;
      raw = new double[cells];
      qm = new double[cells];
      qt = new double[cells];
      distinctOf = new int[rowCapacity];
      column = new int[colCapacity];
      negEntropy = new double[rowCapacity];
      r = new double[rowCapacity];
      rTry = new double[rowCapacity];
      d = new double[rowCapacity];
      dTry = new double[rowCapacity];
      acc = new double[rowCapacity];
      q = new double[colCapacity];
      qTry = new double[colCapacity];
      v = new double[rowCapacity];
      w = new double[rowCapacity];
      member = new int[rowCapacity];
      linear = new boolean[rowCapacity];
      sigma = new double[rowCapacity];
      f = new double[cells];
      curv = new double[rowCapacity * rowCapacity];
      chol = new double[rowCapacity * rowCapacity];
      lq = new double[colCapacity];
    }
    return raw;
  }

  /**
   * Validates loaded row {@code m} of {@code cols} entries and divides it by its sum (so the
   * channel is stochastic to rounding, whatever the storage precision), flushing entries below
   * {@link #TINY} to 0 first.
   *
   * @return null when the row is a probability vector, else what is wrong with it
   */
  String checkRow(int m, int cols) {
    int base = m * cols;
    double sum = 0;
    for (int k = 0; k < cols; k++) {
      double v = raw[base + k];
      if (!(v >= 0) || v == Double.POSITIVE_INFINITY) {
        return "entry " + k + " = " + v + "; a probability must be finite and ≥ 0";
      }
      sum += v;
    }
    if (!(Math.abs(sum - 1) <= SUM_TOLERANCE)) {
      return "entries sum to " + sum + "; a probability vector sums to 1 within 1e-6";
    }
    double kept = 0;
    for (int k = 0; k < cols; k++) {
      double v = raw[base + k];
      // + 0.0 turns −0.0 into 0.0, so rows that differ only there compare equal.
      v = v < TINY ? 0.0 : v + 0.0;
      raw[base + k] = v;
      kept += v;
    }
    for (int k = 0; k < cols; k++) {
      raw[base + k] /= kept;
    }
    return null;
  }

  /**
   * PROBES.md §3.3 on the loaded, checked rows. Exact reductions come first: identical rows merge
   * (a copy of a row adds nothing an input distribution cannot already do), columns on which every
   * row agrees are dropped (for such a column q_k = Q_mk whatever r is, so its terms of D are 0),
   * and with two varying columns only the two ends of the segment the rows lie on are kept ({@link
   * #keepEndsOfSegment}). Then the chosen loop runs, with D_m = Σ_k Q_mk ln Q_mk − Σ_k Q_mk ln q_k
   * and the first sum computed once.
   */
  void solve(int rows, int cols) {
    this.rows = rows;
    iterations = 0;
    distinct = 0;
    for (int m = 0; m < rows; m++) {
      int same = -1;
      for (int u = 0; u < distinct && same < 0; u++) {
        if (sameRow(m, u, cols)) {
          same = u;
        }
      }
      if (same < 0) {
        if (distinct != m) {
          System.arraycopy(raw, m * cols, raw, distinct * cols, cols);
        }
        same = distinct++;
      }
      distinctOf[m] = same;
    }
    int s = distinct;
    if (s == 1) {
      r[0] = 1;
      lower = 0;
      upper = 0;
      converged = true;
      return;
    }
    int c = 0;
    for (int k = 0; k < cols; k++) {
      double first = raw[k];
      for (int u = 1; u < s; u++) {
        if (raw[u * cols + k] != first) {
          column[c++] = k;
          break;
        }
      }
    }
    if (c == 2 && s > 2) {
      s = keepEndsOfSegment(rows, cols);
    }
    for (int u = 0; u < s; u++) {
      double h = 0;
      for (int j = 0; j < c; j++) {
        double v = raw[u * cols + column[j]];
        qm[u * c + j] = v;
        qt[j * s + u] = v;
        if (v > 0) {
          h += v * Math.log(v); // 0·ln 0 = 0
        }
      }
      negEntropy[u] = h;
    }

    Arrays.fill(r, 0, s, 1.0 / s);
    double info = evaluate(r, d, q, s, c);
    info = method == Method.REFERENCE ? reference(info, s, c) : newton(info, s, c);
    // I(r) ≥ 0 in exact arithmetic; a rounding below it would not be a better bound.
    lower = Math.max(0, info);
    upper = Math.max(lower, max(d, s));
  }

  /** The loop of PROBES.md §3.3 as written, from r = uniform with I = {@code info}. */
  private double reference(double info, int s, int c) {
    double mu = 1;
    while (true) {
      double maxD = max(d, s);
      if (maxD - info <= TOLERANCE) {
        converged = true;
        return info;
      }
      if (iterations == MAX_ITERATIONS) {
        converged = false;
        return info;
      }
      double infoTry;
      while (true) {
        exponentiatedStep(mu, maxD, s);
        infoTry = evaluate(rTry, dTry, qTry, s, c);
        if (infoTry >= info || mu == 1) {
          break;
        }
        mu = Math.max(1, mu / 2);
      }
      accept();
      info = infoTry;
      mu = Math.min(2 * mu, MU_MAX);
      iterations++;
    }
  }

  /**
   * Newton steps ({@link #newtonStep}) from r = uniform with I = {@code info}, stopping as the
   * reference method does. A step is accepted when it does not lower I (or when it already
   * certifies); ρ falls after an accepted step and rises after a rejected one, and past ρ = 1 the
   * plain Blahut–Arimoto step, which never lowers I, is taken instead, so every iteration accepts a
   * step.
   */
  private double newton(double info, int s, int c) {
    double rho = -1;
    while (true) {
      double maxD = max(d, s);
      if (maxD - info <= TOLERANCE) {
        converged = true;
        return info;
      }
      if (iterations == MAX_ITERATIONS) {
        converged = false;
        return info;
      }
      double scale = curvature(info, s, c);
      if (rho < 0) {
        rho = RHO_START * Math.min(1, scale);
      }
      double infoTry;
      while (true) {
        if (rho > 1) {
          exponentiatedStep(1, maxD, s);
          infoTry = evaluate(rTry, dTry, qTry, s, c);
          rho = 1;
          break;
        }
        if (newtonStep(rho, info, s)) {
          infoTry = evaluate(rTry, dTry, qTry, s, c);
          if (infoTry >= info || max(dTry, s) - infoTry <= TOLERANCE) {
            rho = Math.max(rho * RHO_DOWN, RHO_MIN * scale);
            break;
          }
        }
        rho *= RHO_UP;
      }
      accept();
      info = infoTry;
      iterations++;
    }
  }

  private void accept() {
    double[] t = r;
    r = rTry;
    rTry = t;
    t = d;
    d = dTry;
    dTry = t;
    t = q;
    q = qTry;
    qTry = t;
  }

  /**
   * The curvature of I at r. With E_mk = (Q_mk − q_k)/√q_k and G = E·Eᵀ, the Hessian of I is −G on
   * the tangent space {Σ Δ = 0} (−∇²I = G + 11ᵀ, since every row sums to 1). Each member m gets a
   * coordinate: log coordinates (Δ_m = r_m·v_m, σ_m = √r_m), which keep r positive and turn a
   * shrinking weight into a geometric decay, or linear ones (Δ_m = y_m, σ_m = 1) for a member whose
   * weight wants to grow by more than a factor e (g_m = D_m − I > r_m·G_mm, the 1-D Newton step in
   * log coordinates), which log coordinates would overshoot. Members with r_m ≤ {@link #SUPPORT}
   * that want no such growth are left out. Fills {@code curv} with M = Σ·G·Σ over the {@code
   * included} members (lower triangle) and returns Σ_m r_m G_mm, the scale of the curvature.
   */
  private double curvature(double info, int s, int c) {
    for (int j = 0; j < c; j++) {
      lq[j] = 1 / Math.sqrt(q[j]); // lq is free until the next evaluate
    }
    double scale = 0;
    included = 0;
    for (int u = 0; u < s; u++) {
      double g = d[u] - info;
      if (r[u] <= SUPPORT && g <= 0) {
        continue; // cannot want to grow; its r_m·G_mm ≤ 1e-9·G_mm is lost from the scale only
      }
      int src = u * c;
      int dst = included * c;
      for (int j = 0; j < c; j++) {
        f[dst + j] = (qm[src + j] - q[j]) * lq[j];
      }
      double guu = dot(f, dst, dst, c);
      scale += r[u] * guu;
      boolean grow = g > r[u] * guu;
      if (grow || r[u] > SUPPORT) {
        member[included] = u;
        linear[included] = grow;
        sigma[included] = grow ? 1 : Math.sqrt(r[u]);
        included++;
      }
    }
    int p = included;
    int a = 0;
    for (; a + 1 < p; a += 2) {
      for (int b = 0; b <= a; b += 2) {
        block(a, b, p, c);
      }
    }
    if (a < p) {
      for (int b = 0; b <= a; b++) {
        curv[a * p + b] = dot(f, a * c, b * c, c);
      }
    }
    for (int x = 0; x < p; x++) {
      for (int y = 0; y <= x; y++) {
        curv[x * p + y] *= sigma[x] * sigma[y];
      }
    }
    return scale > 0 ? scale : Double.MIN_NORMAL;
  }

  /** curv[a..a+1][b..b+1] = rows a, a+1 of f dotted with rows b, b+1, one running sum each. */
  private void block(int a, int b, int p, int c) {
    int a0 = a * c;
    int a1 = a0 + c;
    int b0 = b * c;
    int b1 = b0 + c;
    double s00 = 0;
    double s01 = 0;
    double s10 = 0;
    double s11 = 0;
    for (int j = 0; j < c; j++) {
      double x0 = f[a0 + j];
      double x1 = f[a1 + j];
      double y0 = f[b0 + j];
      double y1 = f[b1 + j];
      s00 += x0 * y0;
      s01 += x0 * y1;
      s10 += x1 * y0;
      s11 += x1 * y1;
    }
    curv[a * p + b] = s00;
    curv[a * p + b + 1] = s01;
    curv[(a + 1) * p + b] = s10;
    curv[(a + 1) * p + b + 1] = s11;
  }

  /**
   * Σ_{e < n} x[i + e]·x[k + e] in four interleaved partial sums (fixed order, so the same bits on
   * every JIT tier), which the CPU can overlap where a single running sum waits on each add.
   */
  private static double dot(double[] x, int i, int k, int n) {
    double s0 = 0;
    double s1 = 0;
    double s2 = 0;
    double s3 = 0;
    int e = 0;
    for (; e + 3 < n; e += 4) {
      s0 += x[i + e] * x[k + e];
      s1 += x[i + e + 1] * x[k + e + 1];
      s2 += x[i + e + 2] * x[k + e + 2];
      s3 += x[i + e + 3] * x[k + e + 3];
    }
    for (; e < n; e++) {
      s0 += x[i + e] * x[k + e];
    }
    return (s0 + s1) + (s2 + s3);
  }

  /**
   * rTry from the Newton step regularised by ρ in the coordinates {@link #curvature} chose: y
   * maximises Σ_m σ_m g_m y_m − ½ yᵀMy − ½ρ|y|² subject to Σ_m σ_m y_m = 0 (Σ r stays 1), so y =
   * (ρI + M)⁻¹ (σ∘g − νσ) with ν chosen to meet the constraint. Log members move to r_m·{@link
   * #factor}(y_m / σ_m), linear ones to r_m + y_m, members left out to r_m·factor(min(1, (g_m −
   * ν)/ρ)) (the same step as r_m → 0, capped at the growth that kept them out); then r is
   * normalised. With M = 0 and ρ = 1/μ this is, to first order, the over-relaxed Blahut–Arimoto
   * step; with ρ → 0 it is Newton's method on the simplex.
   *
   * @return false if ρI + M is not positive definite in floating point
   */
  private boolean newtonStep(double rho, double info, int s) {
    int p = included;
    for (int a = 0; a < p; a++) {
      for (int b = 0; b <= a; b++) {
        chol[a * p + b] = curv[a * p + b] + (a == b ? rho : 0);
      }
    }
    // In-place Cholesky, lower triangle, row by row.
    for (int a = 0; a < p; a++) {
      for (int b = 0; b <= a; b++) {
        double sum = chol[a * p + b] - dot(chol, a * p, b * p, b);
        if (a == b) {
          if (!(sum > 0)) {
            return false;
          }
          chol[a * p + a] = Math.sqrt(sum);
        } else {
          chol[a * p + b] = sum / chol[b * p + b];
        }
      }
    }
    for (int a = 0; a < p; a++) {
      w[a] = sigma[a] * (d[member[a]] - info);
      v[a] = sigma[a];
    }
    solveInPlace(w, p);
    solveInPlace(v, p);
    double num = 0;
    double den = 0;
    for (int a = 0; a < p; a++) {
      num += sigma[a] * w[a];
      den += sigma[a] * v[a];
    }
    double nu = num / den;
    for (int u = 0; u < s; u++) {
      rTry[u] = r[u] * factor(Math.min(1, (d[u] - info - nu) / rho));
    }
    for (int a = 0; a < p; a++) {
      int u = member[a];
      double y = w[a] - nu * v[a];
      rTry[u] = linear[a] ? Math.max(r[u] + y, FLOOR) : r[u] * factor(y / sigma[a]);
    }
    normalise(rTry, s);
    return true;
  }

  /**
   * The factor a log-coordinate step v multiplies a weight by: exp(v) when it shrinks (the weight
   * stays positive and can decay geometrically to the floor), 1 + v when it grows (the linear
   * model's own value, which does not explode along directions where I is nearly flat, as among
   * near-copies of a row). The two agree to first order, so Newton's local convergence is kept.
   */
  private static double factor(double v) {
    return v >= 0 ? 1 + v : Math.exp(v);
  }

  /** x ← (L·Lᵀ)⁻¹ x with L the lower triangle in {@code chol} (p × p). */
  private void solveInPlace(double[] x, int p) {
    for (int a = 0; a < p; a++) {
      x[a] = (x[a] - dot2(chol, a * p, x, 0, a)) / chol[a * p + a];
    }
    for (int a = p - 1; a >= 0; a--) {
      double sum = x[a];
      for (int e = a + 1; e < p; e++) {
        sum -= chol[e * p + a] * x[e];
      }
      x[a] = sum / chol[a * p + a];
    }
  }

  private static double dot2(double[] x, int i, double[] y, int k, int n) {
    double sum = 0;
    for (int e = 0; e < n; e++) {
      sum += x[i + e] * y[k + e];
    }
    return sum;
  }

  /** x ← x / Σx, then every entry at least {@link #FLOOR}, then x / Σx again. */
  private static void normalise(double[] x, int n) {
    double sum = 0;
    for (int u = 0; u < n; u++) {
      sum += x[u];
    }
    double inv = 1 / sum;
    double floored = 0;
    for (int u = 0; u < n; u++) {
      double t = Math.max(x[u] * inv, FLOOR);
      x[u] = t;
      floored += t;
    }
    inv = 1 / floored;
    for (int u = 0; u < n; u++) {
      x[u] *= inv;
    }
  }

  /**
   * The input distribution of the last {@link #solve} over the loaded rows: a merged row's weight
   * goes to the first of its copies.
   */
  void inputDistribution(double[] out) {
    boolean[] given = new boolean[distinct];
    for (int m = 0; m < rows; m++) {
      int u = distinctOf[m];
      out[m] = u < 0 || given[u] ? 0 : r[u];
      if (u >= 0) {
        given[u] = true;
      }
    }
  }

  /**
   * With two varying columns (a binary classifier, or rows that differ in two classes only), every
   * row lies on the segment between the rows with the smallest and the largest first varying entry;
   * each row is then a mixture Σ λ_v Q_v of those two, and moving its weight onto them keeps q and
   * lowers Σ r_m H(Q_m) (entropy is concave), so I does not fall: C is the capacity of the two
   * ends. Keeps those two rows (ties: the first) as distinct rows 0 and 1; returns 2.
   */
  private int keepEndsOfSegment(int rows, int cols) {
    int k = column[0];
    int lo = 0;
    int hi = 0;
    for (int u = 1; u < distinct; u++) {
      double v = raw[u * cols + k];
      if (v < raw[lo * cols + k]) {
        lo = u;
      }
      if (v > raw[hi * cols + k]) {
        hi = u;
      }
    }
    System.arraycopy(raw, lo * cols, qm, 0, cols);
    System.arraycopy(raw, hi * cols, qm, cols, cols);
    System.arraycopy(qm, 0, raw, 0, 2 * cols);
    for (int m = 0; m < rows; m++) {
      int u = distinctOf[m];
      distinctOf[m] = u == lo ? 0 : u == hi ? 1 : -1;
    }
    distinct = 2;
    return 2;
  }

  private boolean sameRow(int m, int u, int cols) {
    int a = m * cols;
    int b = u * cols;
    for (int k = 0; k < cols; k++) {
      if (raw[a + k] != raw[b + k]) {
        return false;
      }
    }
    return true;
  }

  private static double max(double[] x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) {
      m = Math.max(m, x[i]);
    }
    return m;
  }

  /** rTry ∝ r ⊙ exp(μ·(D − max D)), normalised with the floor. */
  private void exponentiatedStep(double mu, double maxD, int s) {
    for (int u = 0; u < s; u++) {
      rTry[u] = r[u] * Math.exp(mu * (d[u] - maxD));
    }
    normalise(rTry, s);
  }

  /**
   * Fills {@code dOut} with D_m and {@code qOut} with q = weightsᵀQ, and returns I = Σ_m
   * weights_m·D_m, for s distinct rows over c varying columns. q runs along columns of the
   * row-major copy and Σ_k Q_mk ln q_k along rows of the column-major one, so both inner loops are
   * element-wise and vectorize, and no sum is reordered (the result does not depend on the JIT
   * tier).
   */
  private double evaluate(double[] weights, double[] dOut, double[] qOut, int s, int c) {
    double w0 = weights[0];
    for (int j = 0; j < c; j++) {
      qOut[j] = w0 * qm[j];
    }
    for (int u = 1; u < s; u++) {
      double wu = weights[u];
      int base = u * c;
      for (int j = 0; j < c; j++) {
        qOut[j] += wu * qm[base + j];
      }
    }
    for (int j = 0; j < c; j++) {
      lq[j] = Math.log(qOut[j]);
    }
    Arrays.fill(acc, 0, s, 0.0);
    for (int j = 0; j < c; j++) {
      double l = lq[j];
      int base = j * s;
      for (int u = 0; u < s; u++) {
        acc[u] += qt[base + u] * l;
      }
    }
    double info = 0;
    for (int u = 0; u < s; u++) {
      double du = negEntropy[u] - acc[u];
      dOut[u] = du;
      info += weights[u] * du;
    }
    return info;
  }
}
