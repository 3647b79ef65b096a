# Sourced by the scripts: install_missing PREFIX PACKAGE... installs the Debian packages that are not installed yet.
install_missing() {
  local prefix=$1 missing=() p
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "$prefix: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "$prefix: need root to install ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
