"""Federation: invitations, membership, catalogue replication and federated search.

Every test runs real nodes on loopback (port 0) and forms federations through the API
or the CLI with the `Federation` harness from conftest. Waits poll a condition against a
deadline; the one-second replication promise is measured from the moment the change
returned to its caller.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (
    Federation,
    Node,
    find_hit,
    format_latencies,
    hit_ids,
    http_request,
    pegel_spec,
    wait_until,
)
from wire import pb

# Changes to a member's catalogue (create, PUT, DELETE) reach every member within this.
SEARCHABLE_DEADLINE = 1.0
# A member that comes back (restart, late join) has caught up within this.
CATCH_UP_DEADLINE = 5.0
# Removing or losing a member clears its entries everywhere within this.
REMOVAL_DEADLINE = 5.0
# Set-up waits (datasets a test starts from) are generous.
SETUP_DEADLINE = 10.0
JSON = {"Content-Type": "application/json"}
INVITATION_PREFIX = "urbanmesh-invitation:"


# ---- helpers ----------------------------------------------------------------------------------


def spec(dataset_id: str, title: str, description: str, **overrides) -> dict:
    return pegel_spec(dataset_id, title=title, description=description, **overrides)


def put(node: Node, body: dict):
    return node.request("PUT", f"/api/v1/datasets/{body['id']}", json.dumps(body).encode(), JSON, auth=True)


def has(dataset_id: str, origin: Node | None = None):
    """A search condition: `dataset_id` is among the hits (from `origin`, if given)."""

    def condition(results: dict) -> bool:
        hit = find_hit(results, dataset_id)
        return hit is not None and (origin is None or hit.get("origin", {}).get("peer") == origin.peer_id)

    return condition


def lacks(dataset_id: str):
    return lambda results: find_hit(results, dataset_id) is None


def origins(results: dict) -> dict[str, str | None]:
    """Dataset id -> origin node name (None for the node's own) of every hit."""
    return {hit["id"]: hit.get("origin", {}).get("name") for hit in results["hits"]}


def facet(results: dict, dimension: str) -> dict[str, int]:
    return {entry["value"]: entry["count"] for entry in results["facets"][dimension]}


def decode(invitation: str) -> pb.Signed:
    """The signed envelope of an invitation (protobuf `Signed`)."""
    assert invitation.startswith(INVITATION_PREFIX), invitation
    encoded = invitation[len(INVITATION_PREFIX):]
    return pb.Signed.FromString(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def encode(envelope: pb.Signed) -> str:
    raw = envelope.SerializeToString()
    return INVITATION_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def invitation_statement(invitation: str) -> pb.Invitation:
    statement = pb.Statement.FromString(decode(invitation).body)
    assert statement.WhichOneof("kind") == "invitation", statement
    return statement.invitation


def invitation_body(invitation: str) -> dict:
    body = invitation_statement(invitation)
    return {
        "federation": body.federation,
        "federation_name": body.federation_name,
        "inviter": body.inviter,
        "inviter_name": body.inviter_name,
        "addresses": list(body.addresses),
        "invitee": body.invitee if body.HasField("invitee") else None,
        "nonce": body.nonce,
        "expires": body.expires,
    }


def refused(response, status: int = 403, mentions: str | None = None) -> dict:
    """Asserts a refusal as problem+json with `status`; for 403 the detail starts with
    "invitation refused:" and, when given, mentions `mentions`."""
    assert response.status == status, f"expected {status}, got {response!r}"
    problem = response.problem()
    if status == 403:
        assert problem["detail"].startswith("invitation refused: "), problem
    if mentions:
        assert mentions in problem["detail"], f"detail should mention {mentions!r}: {problem}"
    return problem


def listed_peers(node: Node) -> set[str]:
    return {m["peer"] for m in node.federation_status()["members"]}


def member_view(node: Node, peer: str) -> dict | None:
    return next((m for m in node.federation_status()["members"] if m["peer"] == peer), None)


def create_everywhere_visible(federation: Federation, specs: dict[Node, dict], word: str) -> None:
    """Set-up: each node creates its dataset; waits until every running member finds all
    of them with a federated search for `word`."""
    for node, body in specs.items():
        node.create_dataset(body)
    ids = {body["id"] for body in specs.values()}
    federation.wait_everywhere(
        lambda r: ids <= set(hit_ids(r)), f"set-up datasets {sorted(ids)} everywhere", SETUP_DEADLINE, q=word
    )


def connected_to(node: Node, peer: str):
    """A condition: `node`'s log says it connected to `peer` (needs urbanmesh_protocol=debug)."""

    def condition() -> bool:
        return any("peer connected" in line and peer in line for line in node.log_tail(200_000).splitlines())

    return condition


# ---- forming and replication ------------------------------------------------------------------


def test_five_towns_form_a_federation_by_chained_invitations(owl):
    names = {n.peer_id: n.name for n in owl.nodes}
    founder = owl.nodes[0]
    for viewer in owl.nodes:
        status = viewer.federation_status()
        assert status["me"] == viewer.peer_id
        assert status["federation"]["name"] == "OWL" and status["federation"]["founder"] == founder.peer_id
        members = {m["peer"]: m for m in status["members"]}
        assert set(members) == set(names), status
        for k, node in enumerate(owl.nodes):
            member = members[node.peer_id]
            sponsor = owl.nodes[max(k - 1, 0)]
            assert member["name"] == node.name and member["status"] == "admitted", member
            assert member["sponsor"] == sponsor.peer_id, (viewer.name, node.name, member)
            assert member["http"] == node.http and member["flight"] == node.flight, member
            assert set(member["addresses"]) == set(node.p2p), member
            assert member["connected"] is True, (viewer.name, member)
    ids = {n.federation_status()["federation"]["id"] for n in owl.nodes}
    assert len(ids) == 1, ids


def test_catalogue_changes_reach_every_member_within_a_second(owl):
    origin = owl.node("Herford")
    others = owl.others(origin)
    body = spec("pegel-werre", "Pegelstände der Werre", "Wasserstände der Werre in Herford, 15-Minuten-Werte")

    # create
    origin.create_dataset(body)
    created = time.monotonic()
    latencies = owl.wait_everywhere(
        has("pegel-werre", origin), "a new dataset in federated search", SEARCHABLE_DEADLINE,
        nodes=others, since=created, q="Werre",
    )
    print(f"create reached the members after: {format_latencies(latencies)}")

    expected_origin = {"peer": origin.peer_id, "name": "Herford", "http": origin.http, "flight": origin.flight}
    for node in others:
        results = node.search("Werre")
        hit = find_hit(results, "pegel-werre")
        assert hit["origin"] == expected_origin, (node.name, hit)
        assert hit["title"] == body["title"] and hit["description"] == body["description"], hit
        assert hit["links"] == {
            "self": f"{origin.http}/api/v1/datasets/pegel-werre",
            "rows": f"{origin.http}/api/v1/datasets/pegel-werre/rows",
            "dcat": f"{origin.http}/datasets/pegel-werre.ttl",
        }, hit
        assert facet(results, "origin") == {"Herford": 1}, (node.name, results["facets"])
        # Only the federated scope shows replicas; local is the default.
        assert "pegel-werre" not in hit_ids(node.search("Werre", scope="local")), node.name
        assert "pegel-werre" not in hit_ids(node.search("Werre", scope=None)), node.name
        # The DCAT export stays local.
        export = node.get("/catalog.ttl")
        assert export.status == 200, export
        assert "pegel-werre" not in export.text, f"{node.name}'s /catalog.ttl lists Herford's dataset"
    for link in find_hit(others[0].search("Werre"), "pegel-werre")["links"].values():
        assert http_request("GET", link).status == 200, link

    # On the origin: one hit, its own (no origin), in both scopes and in its export.
    owl.wait_everywhere(has("pegel-werre"), "the new dataset on its origin", SEARCHABLE_DEADLINE,
                        nodes=[origin], since=created, q="Werre")
    own = origin.search("Werre")
    assert hit_ids(own) == ["pegel-werre"] and "origin" not in own["hits"][0], own
    assert own["hits"][0]["links"]["self"] == "/api/v1/datasets/pegel-werre"
    assert hit_ids(origin.search("Werre", scope="local")) == ["pegel-werre"]
    assert "pegel-werre" in origin.get("/catalog.ttl").text

    # PUT of the description
    changed = dict(body, description="Wasserstände der Werre mit Hochwasserwarnstufen, 15-Minuten-Werte")
    response = put(origin, changed)
    assert response.status == 200, response
    updated = time.monotonic()

    def described(results):
        hit = find_hit(results, "pegel-werre")
        return hit is not None and hit["description"] == changed["description"]

    latencies = owl.wait_everywhere(
        described, "a PUT description in federated search", SEARCHABLE_DEADLINE,
        nodes=others, since=updated, q="Hochwasserwarnstufen",
    )
    print(f"PUT reached the members after: {format_latencies(latencies)}")

    # DELETE
    assert origin.delete("/api/v1/datasets/pegel-werre").status == 204
    deleted = time.monotonic()
    latencies = owl.wait_everywhere(
        lacks("pegel-werre"), "a deleted dataset gone from federated search", SEARCHABLE_DEADLINE,
        nodes=others, since=deleted, q="Werre",
    )
    print(f"DELETE reached the members after: {format_latencies(latencies)}")
    for node in others:
        assert "pegel-werre" not in hit_ids(node.search("Hochwasserwarnstufen")), node.name


def test_the_same_dataset_id_on_two_members_is_two_hits(owl):
    detmold, salzuflen = owl.node("Detmold"), owl.node("Bad Salzuflen")
    detmold.create_dataset(spec("radzaehler", "Radzählstellen Detmold", "Radverkehr an Zählstellen in Detmold"))
    salzuflen.create_dataset(spec("radzaehler", "Radzählstellen Bad Salzuflen", "Radverkehr im Kurpark"))

    def both(results) -> list[str]:
        """The origins of the radzaehler hits ("local" for the node's own)."""
        return sorted(h.get("origin", {}).get("name", "local") for h in results["hits"] if h["id"] == "radzaehler")

    owl.wait_everywhere(lambda r: len(both(r)) == 2, "both radzaehler datasets", SETUP_DEADLINE, q="Radverkehr")
    results = owl.node("Gütersloh").search("Radverkehr")
    assert both(results) == ["Bad Salzuflen", "Detmold"], results["hits"]
    assert facet(results, "origin") == {"Bad Salzuflen": 1, "Detmold": 1}, results["facets"]
    # On Detmold: its own entry and Bad Salzuflen's replica.
    on_detmold = detmold.search("Radverkehr")
    assert both(on_detmold) == ["Bad Salzuflen", "local"], on_detmold["hits"]
    assert facet(on_detmold, "origin") == {"Bad Salzuflen": 1, "Detmold": 1}, on_detmold["facets"]
    # Each origin's hit links to its own node.
    links = {h["origin"]["name"]: h["links"]["self"] for h in results["hits"] if h["id"] == "radzaehler"}
    assert links == {
        "Detmold": f"{detmold.http}/api/v1/datasets/radzaehler",
        "Bad Salzuflen": f"{salzuflen.http}/api/v1/datasets/radzaehler",
    }
    # Deleting one leaves the other.
    assert detmold.delete("/api/v1/datasets/radzaehler").status == 204
    owl.wait_everywhere(
        lambda r: both(r) in (["Bad Salzuflen"], ["local"]), "only Bad Salzuflen's radzaehler left",
        SEARCHABLE_DEADLINE, q="Radverkehr",
    )


def test_a_node_without_an_invitation_learns_nothing(owl):
    member = owl.node("Bielefeld")
    outsider = owl.new_node("Lemgo", start=False)
    outsider.init()
    outsider.add_config("p2p", "bootstrap", [a for a in member.p2p if "/tcp/" in a])
    outsider.env["RUST_LOG"] = "info,urbanmesh_protocol=debug"
    outsider.start()
    wait_until(connected_to(outsider, member.peer_id), SETUP_DEADLINE, "the outsider to connect to Bielefeld")
    outsider.create_dataset(spec("geheim-lemgo", "Pegelstände Lemgo", "Wasserstände der Bega in Lemgo"))
    owl.wait_everywhere(has("geheim-lemgo"), "the outsider's own dataset", SETUP_DEADLINE, nodes=[outsider],
                        q="Wasserstände")

    # Members keep replicating among themselves while the outsider is connected.
    member.create_dataset(spec("pegel-lutter-bi", "Pegelstände Lutter", "Wasserstände der Lutter in Bielefeld"))
    created = time.monotonic()
    owl.wait_everywhere(has("pegel-lutter-bi", member), "a member's new dataset on the members",
                        SEARCHABLE_DEADLINE, nodes=owl.others(member), since=created, q="Wasserstände")

    # The outsider learned nothing: its federated search holds only its own entry.
    results = outsider.search("Wasserstände")
    assert origins(results) == {"geheim-lemgo": None}, results["hits"]
    assert outsider.search()["total"] == 1
    status = outsider.federation_status()
    assert "federation" not in status and status["members"] == [], status
    # Members neither list the outsider nor show its entry.
    for node in owl.nodes:
        assert outsider.peer_id not in listed_peers(node), node.name
        assert "geheim-lemgo" not in hit_ids(node.search("Wasserstände")), node.name
        assert "Lemgo" not in facet(node.search(), "origin"), node.name


# ---- invitations ------------------------------------------------------------------------------


def test_an_invitation_admits_one_node_only(federation_factory):
    owl = federation_factory(1)
    bielefeld, herford, detmold, salzuflen = owl.new_nodes(4)
    founder = owl.founder

    invitation = owl.invitation(invitee="Bielefeld")
    response = bielefeld.join(invitation)
    assert response.status == 200, response
    owl.expect_admitted(bielefeld, founder)
    refused(herford.join(invitation), 403, "used")
    assert "federation" not in herford.federation_status()

    # Two nodes redeeming one invitation at the same moment: exactly one gets in.
    invitation = owl.invitation(invitee="Detmold oder Bad Salzuflen")
    barrier = threading.Barrier(2)

    def redeem(node):
        barrier.wait()
        return node, node.join(invitation)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(redeem, [detmold, salzuflen]))
    winners = [node for node, response in answers if response.status == 200]
    assert len(winners) == 1, [(node.name, response) for node, response in answers]
    for node, response in answers:
        if node not in winners:
            refused(response, 403, "used")
    owl.expect_admitted(winners[0], founder)
    owl.wait_converged()
    for node in owl.nodes:
        assert herford.peer_id not in listed_peers(node), node.name


def test_an_expired_invitation_is_refused(federation_factory):
    owl = federation_factory(1)
    bielefeld = owl.new_node()
    invitation = owl.founder.invite(name="Bielefeld", ttl="1s")
    expires = invitation_body(invitation)["expires"]
    assert abs(expires - (time.time() + 1)) < 5, expires
    # Poll the clock until the invitation is a full second past its expiry.
    wait_until(lambda: time.time() >= expires + 1.05, 5, "the invitation to expire", interval=0.05)
    refused(bielefeld.join(invitation), 403, "expired")
    assert "federation" not in bielefeld.federation_status()
    assert bielefeld.peer_id not in listed_peers(owl.founder)
    # `urbanmesh join` refuses it too (here on a stopped node, which checks it before storing).
    bielefeld.terminate()
    result = bielefeld.run_cli("join", "--data-dir", str(bielefeld.data_dir), invitation)
    assert result.returncode != 0, result.stdout
    assert "expired" in result.stderr, result.stderr


@pytest.mark.parametrize("ttl", ["0s", "soon", "400d", ""])
def test_invitation_lifetimes_are_checked(shared_node, ttl):
    response = shared_node.post_json("/api/v1/federation/invitations", {"ttl": ttl})
    assert 400 <= response.status < 500, response
    response.problem()


def test_invitation_lifetime_is_stated(federation_factory):
    owl = federation_factory(1)
    response = owl.founder.post_json("/api/v1/federation/invitations", {"ttl": "30m", "name": "Bielefeld"})
    assert response.status == 201, response
    assert response.json()["ttl_seconds"] == 1800
    body = invitation_body(response.json()["invitation"])
    assert body["inviter"] == owl.founder.peer_id and body["federation_name"] == "OWL", body
    assert abs(body["expires"] - (time.time() + 1800)) < 10, body
    assert set(body["addresses"]) == set(owl.founder.p2p), body
    assert owl.founder.post_json("/api/v1/federation/invitations", {}, auth=False).status == 401


def test_forged_invitations_are_refused(federation_factory):
    owl = federation_factory(1)
    bielefeld = owl.new_node()
    founder = owl.founder
    genuine = owl.invitation(invitee="Bielefeld")
    other = owl.invitation(invitee="jemand anderes")
    envelope = decode(genuine)
    body = invitation_statement(genuine)

    def changed(**fields) -> str:
        forged = pb.Signed()
        forged.CopyFrom(envelope)
        for name, value in fields.items():
            setattr(forged, name, value)
        return encode(forged)

    def rebody(**changes) -> str:
        invitation = pb.Invitation()
        invitation.CopyFrom(body)
        for name, value in changes.items():
            if name == "addresses":
                del invitation.addresses[:]
                invitation.addresses.extend(value)
            else:
                setattr(invitation, name, value)
        return changed(body=pb.Statement(invitation=invitation).SerializeToString())

    encoded = genuine[len(INVITATION_PREFIX):]
    middle = len(encoded) // 2
    flipped = encoded[:middle] + ("B" if encoded[middle] != "B" else "C") + encoded[middle + 1:]
    forgeries = {
        "a flipped character": INVITATION_PREFIX + flipped,
        "a later expiry": rebody(expires=body.expires + 365 * 86400),
        "another federation name": rebody(federation_name="Verbund Lippe"),
        "other addresses": rebody(addresses=[a.replace("127.0.0.1", "127.0.0.2") for a in body.addresses]),
        "another signer": changed(signer=bielefeld.peer_id),
        "another invitation's signature": changed(signature=decode(other).signature),
        "no signature": changed(signature=b""),
        "the same invitation, signed as a join consent": changed(
            body=pb.Statement(consent=pb.JoinConsent(federation=body.federation, member=bielefeld.peer_id,
                                                     inviter=body.inviter, nonce=body.nonce)).SerializeToString()
        ),
        "cut short": genuine[: len(genuine) - 10],
    }
    for what, forged in forgeries.items():
        response = bielefeld.join(forged)
        assert response.status == 403, f"an invitation with {what}: {response!r}"
        refused(response, 403)
    assert "federation" not in bielefeld.federation_status()
    assert bielefeld.peer_id not in listed_peers(founder)
    # None of the forgeries used the genuine invitation up.
    response = bielefeld.join(genuine)
    assert response.status == 200, response
    owl.expect_admitted(bielefeld, founder)
    owl.wait_converged()


def test_invitations_for_another_federation_and_joining_twice(federation_factory):
    owl = federation_factory(1, name="OWL")
    weser = federation_factory(1, name="Weser", names=["Minden"])
    guetersloh = owl.founder
    bielefeld, herford, detmold = owl.new_nodes(3)

    # Gütersloh leaves its federation OWL (founded alone) and founds "Lippe"; an
    # invitation to OWL it issued before is now for another federation.
    stale = guetersloh.invite(name="Bielefeld")
    old_id = guetersloh.federation_status()["federation"]["id"]
    assert guetersloh.delete(f"/api/v1/federation/members/{guetersloh.peer_id}").status == 204
    status = guetersloh.federation_status()
    assert "federation" not in status and status["members"] == [], status
    lippe = guetersloh.invite(name="Herford", federation="Lippe")
    assert guetersloh.federation_status()["federation"]["id"] != old_id
    refused(bielefeld.join(stale), 403, "another federation")
    assert "federation" not in bielefeld.federation_status()
    response = herford.join(lippe)
    assert response.status == 200, response
    assert response.json()["federation"]["name"] == "Lippe"

    # A member presenting an invitation to another federation: 409, and the invitation
    # stays usable.
    to_weser = weser.founder.invite(name="Detmold")
    refused(herford.join(to_weser), 409)
    assert herford.federation_status()["federation"]["name"] == "Lippe"
    assert herford.peer_id not in listed_peers(weser.founder)
    response = detmold.join(to_weser)
    assert response.status == 200, response
    assert response.json()["federation"]["name"] == "Weser"
    # Joining its own federation again is a conflict too.
    refused(herford.join(guetersloh.invite()), 409)
    # … also through the CLI, which says why.
    result = herford.run_cli("join", "--data-dir", str(herford.data_dir), guetersloh.invite())
    assert result.returncode != 0 and "already a member" in result.stderr, (result.stdout, result.stderr)


# ---- removal: who may remove whom, leaving, a taken name and a newcomer's catalogue are rules of
# the federation, tested in node/tests/membership.rs; the HTTP status of each refusal in
# web/src/problem.rs. ---------------------------------------------------------------------------


# ---- restarts and late joins ------------------------------------------------------------------


def test_a_restarted_member_catches_up(federation_factory):
    owl = federation_factory(3, via="cli")
    guetersloh, bielefeld, herford = owl.nodes
    bielefeld.create_dataset(spec("alt", "Altglascontainer", "Standorte der Altglascontainer in Bielefeld"))
    bielefeld.create_dataset(spec("bleibt", "Wertstoffhöfe", "Standorte der Wertstoffhöfe in Bielefeld"))
    herford.create_dataset(spec("herford-eigen", "Wertstoffe Herford", "Standorte der Wertstoffhöfe in Herford"))
    owl.wait_everywhere(lambda r: {"alt", "bleibt", "herford-eigen"} <= set(hit_ids(r)), "set-up datasets",
                        SETUP_DEADLINE, q="Standorte")

    assert herford.terminate() == 0
    wait_until(lambda: not any(member_view(n, herford.peer_id)["connected"] for n in (guetersloh, bielefeld)),
               SETUP_DEADLINE, "the others to see Herford disconnected")
    bielefeld.create_dataset(spec("neu-bi", "Containerplan", "Standorte neuer Container in Bielefeld"))
    assert bielefeld.delete("/api/v1/datasets/alt").status == 204
    changed = spec("bleibt", "Wertstoffhöfe", "Standorte und Öffnungszeiten der Wertstoffhöfe in Bielefeld")
    assert put(bielefeld, changed).status == 200
    guetersloh.create_dataset(spec("neu-gt", "Sammelstellen", "Standorte der Sammelstellen in Gütersloh"))
    expected = {"bleibt": "Bielefeld", "neu-bi": "Bielefeld", "neu-gt": "Gütersloh", "herford-eigen": None}

    herford.start()
    started = time.monotonic()

    def caught_up(results):
        hit = find_hit(results, "bleibt")
        return origins(results) == expected and hit["description"] == changed["description"]

    latencies = owl.wait_everywhere(caught_up, "the restarted member caught up", CATCH_UP_DEADLINE,
                                    nodes=[herford], since=started, q="Standorte")
    print(f"Herford caught up {format_latencies(latencies)} after its start returned")
    owl.wait_converged()

    # Changes flow both ways again.
    herford.create_dataset(spec("herford-neu", "Wertstoffe Herford neu", "Standorte neuer Container in Herford"))
    created = time.monotonic()
    owl.wait_everywhere(has("herford-neu", herford), "a change on the restarted member", SEARCHABLE_DEADLINE,
                        nodes=[guetersloh, bielefeld], since=created, q="Standorte")


def test_members_follow_a_restarted_member_to_its_new_addresses(federation_factory):
    owl = federation_factory(2)
    guetersloh, bielefeld = owl.nodes
    bielefeld.create_dataset(spec("spielplaetze", "Spielplätze", "Spielplätze in Bielefeld"))
    owl.wait_everywhere(has("spielplaetze"), "set-up dataset", SETUP_DEADLINE, q="Spielplätze")
    old_http = bielefeld.http

    bielefeld.restart()  # port 0: new HTTP, Flight and libp2p ports
    assert bielefeld.http != old_http
    started = time.monotonic()
    owl.wait_converged(CATCH_UP_DEADLINE)

    def current(view):
        return view["http"] == bielefeld.http and view["flight"] == bielefeld.flight and set(
            view["addresses"]) == set(bielefeld.p2p)
    # Connected first, then the member's new record arrives by sync or gossip.
    wait_until(lambda: current(member_view(guetersloh, bielefeld.peer_id)), CATCH_UP_DEADLINE,
               "Gütersloh to learn Bielefeld's new addresses")

    # Federated hits name the origin where it is now, and their links lead there.
    def follows(results):
        hit = find_hit(results, "spielplaetze")
        return hit is not None and hit["origin"]["http"] == bielefeld.http and hit["origin"][
            "flight"] == bielefeld.flight and hit["links"]["self"] == f"{bielefeld.http}/api/v1/datasets/spielplaetze"

    latencies = owl.wait_everywhere(follows, "Bielefeld's hit to name its new addresses", CATCH_UP_DEADLINE,
                                    nodes=[guetersloh], since=started, q="Spielplätze")
    print(f"Gütersloh followed Bielefeld to its new addresses {format_latencies(latencies)} after its start")


def test_a_member_that_was_down_learns_of_a_removal(federation_factory):
    owl = federation_factory(4)
    guetersloh, bielefeld, herford, detmold = owl.nodes
    create_everywhere_visible(owl, {
        herford: spec("kitas-hf", "Kitas Herford", "Kindertagesstätten in Herford"),
        detmold: spec("kitas-dt", "Kitas Detmold", "Kindertagesstätten in Detmold"),
    }, "Kindertagesstätten")
    assert bielefeld.terminate() == 0

    response = owl.remove(detmold, by=guetersloh)
    assert response.status == 204, response
    owl.wait_everywhere(lacks("kitas-dt"), "the removed member's entries gone", REMOVAL_DEADLINE,
                        q="Kindertagesstätten")

    bielefeld.start()
    started = time.monotonic()
    latencies = owl.wait_everywhere(
        lambda r: set(hit_ids(r)) == {"kitas-hf"}, "the removal to reach the restarted member", CATCH_UP_DEADLINE,
        nodes=[bielefeld], since=started, q="Kindertagesstätten",
    )
    print(f"Bielefeld dropped Detmold's entries {format_latencies(latencies)} after its start")
    owl.wait_converged(CATCH_UP_DEADLINE)
    assert member_view(bielefeld, detmold.peer_id)["status"] == "removed"


@pytest.mark.parametrize("history", ["stopped", "never started"])
def test_join_on_a_stopped_node_happens_at_its_next_start(federation_factory, history):
    owl = federation_factory(2)
    guetersloh, bielefeld = owl.nodes
    guetersloh.create_dataset(spec("baustellen", "Baustellen Gütersloh", "Baustellen im Stadtgebiet"))
    detmold = owl.new_node("Detmold", start=False)
    detmold.init()
    if history == "stopped":
        detmold.start()
        detmold.create_dataset(spec("baustellen-dt", "Baustellen Detmold", "Baustellen im Stadtgebiet Detmold"))
        assert detmold.terminate() == 0
        # `urbanmesh invite` needs a running node.
        result = detmold.run_cli("invite", "--data-dir", str(detmold.data_dir))
        assert result.returncode != 0 and "not running" in result.stderr, (result.stdout, result.stderr)

    invitation = owl.invitation(inviter=bielefeld, invitee="Detmold", via="cli")
    result = detmold.run_cli("join", "--data-dir", str(detmold.data_dir), invitation)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        'the node will join the federation "OWL" (invited by Bielefeld) when it next starts'
    ), result.stdout

    detmold.start()
    started = time.monotonic()
    owl.expect_admitted(detmold, bielefeld)
    owl.wait_converged(CATCH_UP_DEADLINE)
    latencies = owl.wait_everywhere(has("baustellen", guetersloh), "the late joiner caught up", CATCH_UP_DEADLINE,
                                    nodes=[detmold], since=started, q="Baustellen")
    print(f"Detmold joined and caught up {format_latencies(latencies)} after its start")
    if history == "stopped":
        owl.wait_everywhere(has("baustellen-dt", detmold), "the late joiner's dataset on the members",
                            CATCH_UP_DEADLINE, nodes=[guetersloh, bielefeld], q="Baustellen")
    # The stored invitation was used: it does not admit anyone else.
    herford = owl.new_node("Herford")
    refused(herford.join(invitation), 403, "used")
    # …and restarting the joiner does not try again or change anything.
    detmold.restart()
    owl.wait_converged()


# ---- malformed input --------------------------------------------------------------------------

GARBAGE = [
    "",
    "garbage",
    INVITATION_PREFIX,
    INVITATION_PREFIX + "!!!!",
    INVITATION_PREFIX + "€uro",
    INVITATION_PREFIX + base64.urlsafe_b64encode(b"not protobuf").decode().rstrip("="),
    INVITATION_PREFIX + base64.urlsafe_b64encode(b'{"body":1,"signer":[],"signature":{}}').decode().rstrip("="),
    encode(pb.Signed(body=b"", signer="not-a-peer-id", signature=b"\x00\x00\x00")),
    encode(pb.Signed(body=b"x" * 40_000, signer="12D3KooWL81DX11KSoxaJCVRSVa7ANvqBs3F8hWjNgyG9WfSTVaa", signature=b"")),
    INVITATION_PREFIX + "A" * 100_000,  # longer than any invitation
    "urbanmesh-invitation:" * 45_000,  # ~0.9 MB, just under the JSON body limit (its own tests cover 413)
    "\u0000\ufffd" * 1000,
]


def test_garbage_invitations_are_refused_and_members_keep_working(federation_factory):
    owl = federation_factory(2)
    guetersloh, bielefeld = owl.nodes
    guetersloh.create_dataset(spec("wahlbezirke", "Wahlbezirke", "Wahlbezirke der Stadt Gütersloh"))
    owl.wait_everywhere(has("wahlbezirke"), "set-up dataset", SETUP_DEADLINE, q="Wahlbezirke")
    herford = owl.new_node("Herford")
    used = owl.invitation(invitee="Herford")
    assert herford.join(used).status == 200
    owl.expect_admitted(herford, guetersloh)
    owl.wait_converged()
    outsider = owl.new_node("Lemgo")

    # Garbage through the API, to the outsider and to members.
    for target in (outsider, guetersloh):
        for text in GARBAGE:
            response = target.join(text)
            assert response.status in (400, 403), f"{target.name}: join with {text[:60]!r}…: {response!r}"
            response.problem()
    for raw in (b"", b"{", b"[]", b'{"invitation": 5}', b'{"invitation": "x", "extra": 1}', b"\xff\xfe"):
        response = outsider.request("POST", "/api/v1/federation/join", raw, JSON, auth=True)
        assert 400 <= response.status < 500, f"join with body {raw!r}: {response!r}"
        response.problem()

    # A flood of genuine-looking but used invitations: each goes over the network to
    # Gütersloh, which refuses it; meanwhile it keeps serving.
    def attempt(_):
        response = outsider.join(used)
        return response.status, response.text

    with ThreadPoolExecutor(8) as pool:
        flood = pool.map(attempt, range(64))
        health = [guetersloh.get("/healthz").status for _ in range(20)]
        answers = list(flood)
    assert set(health) == {200}, health
    for status, text in answers:
        assert status == 403 and "used" in text, (status, text)
    assert all(guetersloh.get("/healthz").status == 200 for _ in range(3))
    assert "federation" not in outsider.federation_status()
    for node in owl.nodes:
        assert outsider.peer_id not in listed_peers(node), node.name
        assert node.get("/healthz").status == 200
        assert "wahlbezirke" in hit_ids(node.search("Wahlbezirke")), node.name

    # Replication still works within a second.
    guetersloh.create_dataset(spec("stimmbezirke", "Stimmbezirke", "Stimmbezirke der Stadt Gütersloh"))
    created = time.monotonic()
    owl.wait_everywhere(has("stimmbezirke", guetersloh), "a new dataset after the flood", SEARCHABLE_DEADLINE,
                        nodes=owl.others(guetersloh), since=created, q="Stimmbezirke")
    owl.wait_converged()


# ---- node-to-node data --------------------------------------------------------------------------


def test_remote_rows_through_rest_and_flight_equal_the_origins(federation_factory):
    import pyarrow.flight as fl

    owl = federation_factory(3)
    guetersloh, bielefeld, herford = owl.nodes
    guetersloh.create_dataset(pegel_spec("pegel-gt"))
    csv = "time,station,value,quality\n" + "".join(
        f"2026-03-01T{h:02d}:00:00Z,{s},{80 + h + i / 10},{h % 3}\n" for h in range(24) for i, s in
        enumerate(["Dalke", "Lutter", "Ölbach"]))
    assert guetersloh.post_rows("pegel-gt", csv, "text/csv").status == 200
    owl.wait_everywhere(has("pegel-gt", guetersloh), "the replica", SETUP_DEADLINE, nodes=[bielefeld, herford],
                        q="Pegelstände")

    query = {"format": "json", "from": "2026-03-01T06:00:00Z", "to": "2026-03-01T12:00:00Z",
             "columns": "time,station,value", "filter": "value > 88"}
    local = guetersloh.get("/api/v1/datasets/pegel-gt/rows", query=query)
    assert local.status == 200, local
    expected = sorted(map(json.dumps, local.json()))
    assert expected, "the filter keeps some rows"
    for reader in (bielefeld, herford):
        for node_name in (guetersloh.name, guetersloh.peer_id):
            path = f"/api/v1/federation/{urllib.parse.quote(node_name)}/datasets/pegel-gt/rows"
            remote = reader.get(path, query=query)
            assert remote.status == 200, remote
            assert sorted(map(json.dumps, remote.json())) == expected

    client = fl.FlightClient(bielefeld.addresses["flight"])
    descriptor = fl.FlightDescriptor.for_path("remote", guetersloh.name, "pegel-gt")
    # The row count travels with the catalogue entry's next version, after the rows are stored.
    info = wait_until(lambda: (i := client.get_flight_info(descriptor)).total_records == 72 and i,
                      SETUP_DEADLINE, "the replica's row count")
    assert info.total_records == 72
    remote_table = client.do_get(info.endpoints[0].ticket).read_all()
    local_table = fl.FlightClient(guetersloh.addresses["flight"]).do_get(
        fl.FlightClient(guetersloh.addresses["flight"]).get_flight_info(
            fl.FlightDescriptor.for_path("pegel-gt")).endpoints[0].ticket).read_all()
    assert remote_table.sort_by("time").equals(local_table.sort_by("time"))
    # GetSchema answers the same descriptor with the schema GetFlightInfo gave.
    remote_descriptor = fl.FlightDescriptor.for_path("remote", guetersloh.name, "pegel-gt")
    assert client.get_schema(remote_descriptor).schema.equals(info.schema)


def test_remote_reads_of_unknown_members_or_datasets_are_not_found(federation_factory):
    import pyarrow.flight as fl

    owl = federation_factory(2)
    guetersloh, bielefeld = owl.nodes
    missing = bielefeld.get(f"/api/v1/federation/{urllib.parse.quote(guetersloh.name)}/datasets/gibt-es-nicht/rows")
    assert missing.status == 404, missing
    stranger = bielefeld.get("/api/v1/federation/Atlantis/datasets/pegel/rows")
    assert stranger.status == 404, stranger
    client = fl.FlightClient(bielefeld.addresses["flight"])
    for call in (client.get_flight_info, client.get_schema):
        with pytest.raises(KeyError, match="not found"):
            call(fl.FlightDescriptor.for_path("remote", "Atlantis", "pegel"))
    assert bielefeld.get("/healthz").status == 200
