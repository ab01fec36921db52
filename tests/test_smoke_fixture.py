from mutual.app import Mutual


def test_small_orgs_workspace_knows_its_trusts(small_orgs: Mutual) -> None:
    codes = {o.code for o in small_orgs.orgs()}
    assert {"R1H", "RAL", "RYJ", "ENG", "Y56"} <= codes
