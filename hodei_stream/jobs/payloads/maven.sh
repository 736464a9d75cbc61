#!/usr/bin/env bash
# Maven job payload: fetch a Java project, build it with a real `mvn -B`, show what it built.
#
# Shipped to a worker as the body of a job (see hodei_stream.jobs.payload): it needs bash,
# Java and Maven there (git for a git URL), nothing of hodei-stream.  Settings come from
# the environment:
#   MAVEN_WORK_DIR   the job's folder (relative: to the job's working folder): project/ (the checkout), repository/ (the job's own
#                    local Maven repository), settings-offline.xml
#   MAVEN_SOURCE     sample:simple | sample:complex (shipped in $HODEI_BUNDLE_DIR/maven),
#                    bundle:NAME (a project shipped in $HODEI_BUNDLE_DIR/NAME),
#                    a git URL (cloned), or a folder on the worker (copied)
#   MAVEN_GOALS      e.g. "clean install"
#   MAVEN_MODE       offline (Debian's /usr/share/maven-repo), online (Maven Central), or
#                    auto: offline when the machine has Debian's repository, else online
#   MAVEN_RUN_JAR    optional: a jar, relative to the project, to run with java -jar after the build
set -euo pipefail

DEBIAN_REPO=/usr/share/maven-repo
work_dir=${MAVEN_WORK_DIR:?MAVEN_WORK_DIR is not set}
# Absolute from here on (it may be relative to the job's working folder): the build runs in
# the project's folder, and Maven's -Dmaven.repo.local and -s must still point here.
mkdir -p "$work_dir"
work_dir=$(cd "$work_dir" && pwd)
source_spec=${MAVEN_SOURCE:-sample:simple}
goals=${MAVEN_GOALS:-clean install}
mode=${MAVEN_MODE:-auto}
project_root="$work_dir/project"
local_repo="$work_dir/repository"

echo "🚀 Maven build: ${source_spec}, goals: ${goals}"
for tool in mvn java; do
  if ! command -v "$tool" >/dev/null; then
    echo "❌ $tool: command not found on this worker" >&2
    exit 127
  fi
done
echo "      $(java -version 2>&1 | head -n 1)"
echo "      $(mvn -v 2>/dev/null | head -n 1 | sed 's/\x1b\[[0-9;]*m//g')"

echo "[1/4] Fetching the project into $project_root"
rm -rf "$project_root"
mkdir -p "$work_dir"
case "$source_spec" in
  sample:*)
    # The samples share a parent POM (pinned plugin versions) in the folder beside them.
    cp -R "${HODEI_BUNDLE_DIR:?the sample project was not shipped with the job}/maven" "$project_root"
    project_dir="$project_root/${source_spec#sample:}"
    ;;
  bundle:*)
    # --repo, a folder of the client's that this worker cannot read: the job carries a copy.
    cp -R "${HODEI_BUNDLE_DIR:?the project was not shipped with the job}/${source_spec#bundle:}" "$project_root"
    project_dir="$project_root"
    ;;
  *)
    if [[ -d "$source_spec" ]]; then
      cp -R "$source_spec" "$project_root"
    else
      # -q: no progress meter (git would draw it on the job's output, one huge line per update).
      git clone -q --depth 1 "$source_spec" "$project_root"
    fi
    project_dir="$project_root"
    ;;
esac
[[ -f "$project_dir/pom.xml" ]] || { echo "❌ no pom.xml in $project_dir" >&2; exit 1; }
echo "      ✔ $(find "$project_dir" -name '*.java' | wc -l) Java files, $(find "$project_dir" -name pom.xml | wc -l) POMs"

if [[ "$mode" == auto ]]; then
  if [[ -d "$DEBIAN_REPO/org/apache/maven/plugins" ]]; then mode=offline; else mode=online; fi
  echo "[2/4] Resolving: auto chose $mode ($( [[ $mode == offline ]] && echo "found $DEBIAN_REPO" || echo "no $DEBIAN_REPO"))"
else
  echo "[2/4] Resolving: $mode"
fi
maven_args=(-B -ntp -Dstyle.color=never "-Dmaven.repo.local=$local_repo"
            # Surefire 2.22 pauses ~10 s after the tests of a forked JVM: run them in Maven's.
            -DforkCount=0)
if [[ "$mode" == offline ]]; then
  # Everything from Debian's packaged repository, copied into the job's own local repository
  # (never written to /usr/share/maven-repo).  Offline mode still allows file:// with
  # aether.offline.protocols; updatePolicy always / checksumPolicy ignore because Debian's
  # repository has no checksums and no metadata worth caching.
  settings="$work_dir/settings-offline.xml"
  policy="<releases><updatePolicy>always</updatePolicy><checksumPolicy>ignore</checksumPolicy></releases><snapshots><enabled>false</enabled></snapshots>"
  cat > "$settings" <<EOF
<settings>
  <mirrors>
    <mirror><id>debian</id><mirrorOf>*</mirrorOf><url>file://$DEBIAN_REPO</url></mirror>
  </mirrors>
  <profiles>
    <profile>
      <id>debian</id>
      <repositories><repository><id>central</id><url>file://$DEBIAN_REPO</url>$policy</repository></repositories>
      <pluginRepositories><pluginRepository><id>central</id><url>file://$DEBIAN_REPO</url>$policy</pluginRepository></pluginRepositories>
    </profile>
  </profiles>
  <activeProfiles><activeProfile>debian</activeProfile></activeProfiles>
</settings>
EOF
  maven_args+=(-o -Daether.offline.protocols=file -s "$settings")
  echo "      mirror: file://$DEBIAN_REPO (settings: $settings)"
fi
echo "      local repository: $local_repo"
# Tier-1 JIT only: a short Maven run starts about three times faster, and builds no slower.
export MAVEN_OPTS="${MAVEN_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"

echo "[3/4] mvn ${maven_args[*]} $goals"
build_started=$(mktemp)
build_status=0
# Debian's mvn prints stray colour resets (ESC[0m) even in batch mode: sed -u drops them
# line by line, without holding any back.  pipefail keeps mvn's exit status.
# The goals are words, split on blanks but never glob-expanded ("*" reaches Maven as "*").
read -r -a goal_words <<< "$goals"
(cd "$project_dir" && mvn "${maven_args[@]}" "${goal_words[@]}" 2>&1) | sed -u -e 's/\x1b\[0m//g' -e '/^$/d' || build_status=$?
if (( build_status != 0 )); then
  rm -f "$build_started"
  echo "❌ mvn exited with status $build_status" >&2
  exit "$build_status"
fi

echo "[4/4] Results"
while IFS= read -r jar; do
  echo "      built     ${jar#"$project_dir"/} ($(stat -c %s "$jar") bytes)"
  # Installed by this build: the same jar, copied into the local repository just now.
  while IFS= read -r installed; do
    echo "      installed ${installed#"$local_repo"/}"
  done < <(find "$local_repo" -name "$(basename "$jar")" -newer "$build_started")
done < <(find "$project_dir" -maxdepth 3 -path '*/target/*' -name '*.jar' | sort)
rm -f "$build_started"
if [[ -n "${MAVEN_RUN_JAR:-}" ]]; then
  echo "      running java -jar $MAVEN_RUN_JAR"
  (cd "$project_dir" && java -jar "$MAVEN_RUN_JAR")
fi
echo "✅ Maven build completed"
