#!/usr/bin/env bash
# Builds the whole solution and runs every test project. This is the README's test command and
# what CI runs. It installs the few Debian packages the tests use as peers when they are missing
# (root is needed for that; elsewhere install them once by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

needed=()
for package in python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || needed+=("$package")
done
if ((${#needed[@]})); then
  echo "installing test peers: ${needed[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
fi

dotnet build AssocDB.sln -c Release -warnaserror
dotnet format AssocDB.sln --verify-no-changes --no-restore
dotnet test AssocDB.sln -c Release --no-build --logger "console;verbosity=normal"
