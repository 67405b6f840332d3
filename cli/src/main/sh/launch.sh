# What the launchers share: ./unseen and ./unseen-spark in the repository, bin/unseen in the distribution (which
# carries this file as lib/launch.sh). Sourced, not run. A launcher sets `launcher` (its name, for messages) and
# `java_hint` (what to do when its Java does not start), then:
#   unseen_java_opts; unseen_jvm_flags [--opencl]; unseen_preload_libjsig LIB
#   exec JAVA "${jvm_flags[@]}" ... 2> >(unseen_stderr >&2)

# One line `NAME: MESSAGE` on stderr, and exit 1.
unseen_fail() {
  printf '%s: %s\n' "${launcher:-unseen}" "$1" >&2
  exit 1
}

# JAVA_OPTS split at white space into the array java_opts (no file-name expansion: -Dx=* stays as written). A word
# that is not an option is refused: the JVM would take it for the class to run.
unseen_java_opts() {
  java_opts=()
  read -r -d '' -a java_opts <<< "${JAVA_OPTS:-}" || true
  local o
  for o in ${java_opts[@]+"${java_opts[@]}"}; do
    case "$o" in
      -*) ;;
      *) unseen_fail "JAVA_OPTS: \"$o\" is not a JVM option (every word starts with -, e.g. JAVA_OPTS=\"-Xmx8g -Dunseen.threads=4\")" ;;
    esac
  done
}

# Whether a command may open OpenCL: a --device, UNSEEN_BACKEND or -Dunseen.backend naming opencl or auto (in any
# case, as Java reads them), or `devices` and `env`, which list the OpenCL platforms. A bare `auto` counts only
# after --device: `--conv auto` names a convolution algorithm, and took G1 (a third more memory on the cpu path).
unseen_may_open_opencl() {
  local a previous= backend=${UNSEEN_BACKEND:-}
  [ "${backend,,}" = auto ] && return 0
  for a in "$@" "${UNSEEN_BACKEND:-}" ${java_opts[@]+"${java_opts[@]}"}; do
    case "${a,,}" in *opencl*|--device=auto|-dunseen.backend=auto|devices|env) return 0 ;; esac
    [ "$previous" = --device ] && [ "${a,,}" = auto ] && return 0
    previous=$a
  done
  return 1
}

# The JVM flags every launch gets, in the array jvm_flags; --opencl: the command may run on OpenCL.
unseen_jvm_flags() {
  # The JVM's own messages (a bad option, a heap it cannot have, a crash's summary) go to stderr, where
  # unseen_stderr turns a failed start into one line and where they stay out of a command's output on stdout.
  jvm_flags=(--add-modules jdk.incubator.vector -XX:+DisplayVMOutputToStderr -Xlog:disable -Xlog:all=warning:stderr)
  # ParallelGC is fastest for the cpu backend. With OpenCL, G1: Aparapi re-creates a device buffer when the
  # collector moves its array, and G1 never moves the (at least 16 MiB) arena array, while ParallelGC forces a
  # resync after every full collection.
  local gc=-XX:+UseParallelGC young=-XX:MaxNewSize=48m o
  [ "${1:-}" = --opencl ] && gc=-XX:+UseG1GC
  # The young generation capped at 48 MB: the JIT's warm-up boxes every vector op until C2 compiles the kernels,
  # and an uncapped young generation grew to 760 MB on that garbage. Peak resident memory of a CIFAR-10 forward
  # 1.0-1.2 -> 0.46 GB with a 64 MB cap, of a 256x256 one 2.0 -> 1.5-1.6 GB, the time per forward unchanged
  # (benchmarks/RESULTS.md). The cap moves memory between workloads, and 48 MB gave the lowest peaks where ONNX
  # Runtime's are nearest (2026-12-07, interleaved, 2 runs each; CIFAR-10 at batch 1 / batch 8): 32 MB 0.49-0.51 /
  # 0.46-0.48 GB, 48 MB 0.45-0.46 / 0.46-0.47, 64 MB 0.45 / 0.49-0.50 (ONNX Runtime: 0.49 / 0.53), times unchanged.
  # Not below a 144 MiB heap, whose young generation (a third) is smaller anyway: there the cap left the old
  # generation next to nothing (-Xmx16m: 0.5 MiB) and the JVM warned about it.
  for o in ${java_opts[@]+"${java_opts[@]}"}; do
    case "$o" in
      -XX:+Use*GC) gc= ;;  # the user's collector wins
      -Xmn*|*NewSize*) young= ;;  # and the user's sizing
    esac
    if [[ "$o" =~ ^(-Xmx|-XX:MaxHeapSize=)([0-9]{1,12})([kKmMgGtT]?)$ ]]; then
      local n=$((10#${BASH_REMATCH[2]})) unit=${BASH_REMATCH[3],,} mib
      case "$unit" in k) mib=$((n >> 10)) ;; m) mib=$n ;; g) mib=$((n << 10)) ;; t) mib=$((n << 20)) ;; *) mib=$((n >> 20)) ;; esac
      [ "$mib" -ge 144 ] || young=
    fi
  done
  jvm_flags+=($gc $young)
}

# FNV-1a of a string, 8 hex digits: names a link after its target.
unseen_hash() {
  local s=$1 h=2166136261 i c
  for ((i = 0; i < ${#s}; i++)); do
    printf -v c '%d' "'${s:i:1}"
    h=$(( ((h ^ (c & 0xFFFF)) * 16777619) & 0xFFFFFFFF ))
  done
  printf '%08x' "$h"
}

# Signal chaining (libjsig): an OpenCL driver built on LLVM (PoCL) installs its own SIGSEGV handler when it compiles
# a kernel, replacing the one the JVM needs for safepoints and null checks; without it the process died now and then
# with a bare SIGSEGV. LD_PRELOAD=LIB ahead of the user's own. The dynamic linker splits LD_PRELOAD at spaces and
# colons, and no quoting helps, so a LIB with one is preloaded through a link in a private cache folder (ours, made
# 0700) whose path has none; where there is no such folder, not at all, with one line saying why and what to do.
unseen_preload_libjsig() {
  local lib=$1 dir link dirs=()
  [ -f "$lib" ] || return 0
  if [[ "$lib" == *[[:space:]:]* ]]; then
    lib=
    if [ -n "${XDG_CACHE_HOME:-}" ]; then dirs+=("$XDG_CACHE_HOME/unseen"); elif [ -n "${HOME:-}" ]; then dirs+=("$HOME/.cache/unseen"); fi
    [ -z "${XDG_RUNTIME_DIR:-}" ] || dirs+=("$XDG_RUNTIME_DIR/unseen")
    for dir in ${dirs[@]+"${dirs[@]}"}; do
      [[ "$dir" == /?* && "$dir" != *[[:space:]:]* ]] || continue
      mkdir -p -m 700 "$dir" 2>/dev/null && [ -O "$dir" ] && [ ! -L "$dir" ] || continue
      link="$dir/libjsig-$(unseen_hash "$1").so"
      [ "$(readlink "$link" 2>/dev/null)" = "$1" ] || ln -sfn "$1" "$link" 2>/dev/null || true
      if [ "$(readlink "$link" 2>/dev/null)" = "$1" ]; then
        lib=$link
        break
      fi
    done
    if [ -z "$lib" ]; then
      printf '%s: warning: libjsig not preloaded: its path (%s) has a space or colon, which LD_PRELOAD cannot hold, and there is no cache folder without one to link it from (set XDG_CACHE_HOME to one, or install Java and Unseen in paths without spaces); OpenCL on PoCL may then die with a bare SIGSEGV\n' \
        "${launcher:-unseen}" "$1" >&2
      return 0
    fi
  fi
  export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
}

# The JVM's stderr, from stdin to stdout, less two notices nobody can act on: the JVM's "Using incubator modules"
# (the Vector API) and Aparapi's "untested OpenCL platform version" (PoCL). Each line is passed on when it ends, and
# the text after a carriage return (a progress bar) as it comes, so a log file or a pipe sees everything at once. It
# ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT, which Ctrl-C, a service manager or a closed terminal send to the whole
# process group, so the JVM's last lines (shutdown messages, a thread dump) still get out; it ends when the JVM
# closes stderr. Filtered also when stderr is a file or a pipe: a log or a script then reads the same lines as a
# terminal, the errors of a failed start included (one line, below).
# A JVM that does not start (a bad JAVA_OPTS) says so before the incubator notice, the first thing a started one
# prints: the lines before it are held, and the JVM's three to five lines about a failed start become one.
unseen_stderr() {
  trap '' INT TERM HUP QUIT
  set +e
  LC_ALL=C
  local c line= raw= starting=1 held=()
  while IFS= read -r -N 1 c; do
    if [ -n "$raw" ]; then
      printf '%s' "$c"
      [ "$c" != $'\n' ] || raw=
      continue
    fi
    case "$c" in
      $'\n') unseen_stderr_line "$line"; line= ;;
      $'\r') unseen_stderr_release; printf '%s\r' "$line"; line= raw=1 ;;
      '') ;;  # a NUL byte
      *) line+=$c ;;
    esac
  done
  if [ -n "$line" ]; then
    if [ -n "$starting" ]; then held+=("$line"); else printf '%s' "$line"; fi
  fi
  [ -z "$starting" ] || unseen_vm_error || unseen_stderr_release
}

unseen_stderr_line() {
  case "$1" in
    'WARNING: Using incubator modules: '*) unseen_stderr_release; return ;;
    'WARNING: Aparapi is running on an untested OpenCL platform version: '*) return ;;
  esac
  if [ -n "$starting" ] && [ "${#held[@]}" -lt 1000 ]; then
    held+=("$1")
  else
    unseen_stderr_release
    printf '%s\n' "$1"
  fi
}

# The held lines, passed on: the JVM started.
unseen_stderr_release() {
  [ -n "$starting" ] || return 0
  starting=
  [ "${#held[@]}" -eq 0 ] || printf '%s\n' "${held[@]}"
  held=()
}

# When the held lines say the JVM did not start: one line with its reason and the fix.
unseen_vm_error() {
  local l why= failed=
  for l in ${held[@]+"${held[@]}"}; do
    case "$l" in
      'Error: Could not create the Java Virtual Machine.'|'Error occurred during initialization of VM') failed=1 ;;
      'Error: A fatal exception has occurred. Program will exit.'|'') ;;
      *) [ -n "$why" ] || why=$l ;;
    esac
  done
  [ -n "$failed" ] || return 1
  why=${why:-the JVM did not start}
  if [ -n "${JAVA_OPTS:-}" ]; then
    local fix="fix or remove that option"
    case "$why" in *[Hh]eap*) fix="give it a heap it can have, e.g. -Xmx4g" ;; esac
    printf '%s: JAVA_OPTS: %s (the JVM did not start with JAVA_OPTS="%s"; %s)\n' "${launcher:-unseen}" "$why" \
      "${java_opts[*]-}" "$fix"
  else
    printf '%s: Java did not start: %s (%s)\n' "${launcher:-unseen}" "$why" "${java_hint:-check java -version}"
  fi
}
