#!/usr/bin/env bash
# No Docker engine runs on the build machines, so the image cannot be built in CI; this
# checks instead that the Dockerfile can only fail for reasons outside the repository:
# every file it copies exists, every make target it runs exists, every package it installs
# is a Debian package, and the runtime packages provide every shared library the built
# binaries need (and libopenblas, which hyperd loads at run time).
# Prints one line per check and ends with "N passed, N failed".
set -u
DOCKERFILE=${DOCKERFILE:-Dockerfile}
BUILD=${BUILD:-build}
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; }

[ -f "$DOCKERFILE" ] || { echo "FAIL no $DOCKERFILE"; echo "0 passed, 1 failed"; exit 1; }
# join continuation lines
df=$(sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$DOCKERFILE")

# COPY sources from the build context (not --from=stage) must exist
while read -r src; do
  [ -e "$src" ] && ok "COPY source exists: $src" || bad "COPY source missing: $src"
done < <(grep -E '^COPY ' <<<"$df" | grep -v -- '--from=' | awk '{for (i = 2; i < NF; i++) print $i}')

# COPY --from=build sources must be files the Makefile builds
while read -r src; do
  rel=${src#/src/}
  target=${rel/#build\//$BUILD/}
  make -n "$target" >/dev/null 2>&1 && ok "built by make: $rel" || bad "no make rule builds $rel"
done < <(grep -E '^COPY --from=build ' <<<"$df" | awk '{for (i = 3; i < NF; i++) print $i}')

# make targets named in RUN lines exist
while read -r t; do
  make -n "$t" >/dev/null 2>&1 && ok "make target exists: $t" || bad "make target missing: $t"
done < <(grep -E '^RUN ' <<<"$df" | grep -oE '(RUN|&&) make [a-z][a-z0-9-]*' | awk '{print $3}' | sort -u)

# every package installed is a Debian package
pkgs=$(grep -E '^RUN ' <<<"$df" | grep -oE 'install -y --no-install-recommends [^&]*' |
       sed 's/install -y --no-install-recommends//' | tr ' ' '\n' | grep -v '^$' | sort -u)
for p in $pkgs; do
  apt-cache show "$p" >/dev/null 2>&1 && ok "Debian package: $p" || bad "not a Debian package: $p"
done

# the runtime stage's packages provide what the binaries link against
runtime=$(awk '/^FROM debian:12-slim/{s=1} s' <<<"$df" | grep -oE 'install -y --no-install-recommends [^&]*' |
          sed 's/install -y --no-install-recommends//' | tr ' ' '\n' | grep -v '^$')
for bin in "$BUILD/hyperd" "$BUILD/hyper"; do
  [ -x "$bin" ] || { bad "$bin not built"; continue; }
  for lib in $(ldd "$bin" | awk '/=>/{print $3}') $( [ "$bin" = "$BUILD/hyperd" ] && readlink -f /usr/lib/x86_64-linux-gnu/libopenblas.so.0); do
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
    case "$pkg" in
      libc6|libgcc-s1|libstdc++6|libgomp1|libgfortran5|libquadmath0) ok "$(basename "$lib") is in the base image ($pkg)"; continue ;;
    esac
    # a runtime package itself, or one it depends on (libopenblas0 pulls its -pthread flavour)
    found=0
    for r in $runtime; do
      if [ "$r" = "$pkg" ] || apt-cache depends --recurse --no-recommends --no-suggests "$r" 2>/dev/null | grep -qx "  *Depends: $pkg\|$pkg"; then found=1; break; fi
    done
    [ $found = 1 ] && ok "$(basename "$bin") needs $(basename "$lib"): from $pkg" || bad "$(basename "$bin") needs $(basename "$lib") ($pkg), which no runtime package installs"
  done
done

grep -q '^USER ' <<<"$df" && ! grep -q '^USER root' <<<"$df" && ok "runs as a non-root user" || bad "no non-root USER"
grep -q '^EXPOSE 8080' <<<"$df" && ok "exposes 8080" || bad "does not expose 8080"
grep -q '^VOLUME ' <<<"$df" && ok "data on a volume" || bad "no VOLUME"
grep -q '^HEALTHCHECK .*v1/health' <<<"$df" && ok "healthcheck on /v1/health" || bad "no HEALTHCHECK on /v1/health"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
