//! The sync test kit used as a POS team would: seeded worlds, scripted offline periods, faults
//! from the seed, crashes at named points, and the checkers, with a property test over random
//! flows and a determinism check.
#![cfg(feature = "testkit")]

use pos_tenancy::sync::CrashPoint;
use pos_tenancy::testkit::sync::{Chaos, KitError, World};
use proptest::prelude::*;

type R = Result<(), Box<dyn std::error::Error>>;

fn busy_day(seed: u64, actions: usize) -> Result<World, KitError> {
    let mut world = World::builder(seed)
        .tenant("caps", 3)
        .tenant("bolt", 3)
        .build()?;
    for tenant in ["caps", "bolt"] {
        let admin = world.admin(tenant)?;
        let first = world.terminal(tenant, 0);
        for (i, sku) in ["OF-1", "AF-2", "SP-7"].iter().enumerate() {
            world.product(first, &admin, sku, 500 + 100 * i as i64, 2_000)?;
        }
        let terminals: Vec<_> = (0..3).map(|n| world.terminal(tenant, n)).collect();
        for (n, t) in terminals.iter().enumerate() {
            // Each till is offline for part of the day, one at a time.
            if n == 1 {
                world.offline(*t);
            }
            for _ in 0..actions {
                world.random_action(*t, &admin)?;
            }
            world.online(*t);
        }
    }
    Ok(world)
}

#[test]
fn two_tenants_of_three_tills_each_converge_after_a_day_offline_and_on() -> R {
    let mut world = busy_day(11, 15)?;
    world.quiesce()?;
    Ok(world.check_all()?)
}

#[test]
fn the_same_seed_gives_the_same_trace() -> R {
    Ok(World::check_deterministic(5, |seed| {
        let mut world = busy_day(seed, 6)?;
        world.chaos(Chaos {
            unavailable: 0.2,
            timeout: 0.1,
            lost_answer: 0.1,
            duplicate: 0.1,
        });
        world.quiesce()?;
        world.check_all()?;
        Ok(world.trace().to_vec())
    })?)
}

#[test]
fn a_till_killed_at_each_point_of_push_pull_and_merge_loses_nothing() -> R {
    for point in [
        CrashPoint::PushAnswered,
        CrashPoint::PullFetched,
        CrashPoint::MergeApplied,
    ] {
        let mut world = World::builder(3).tenant("caps", 2).build()?;
        let admin = world.admin("caps")?;
        let (a, b) = (world.terminal("caps", 0), world.terminal("caps", 1));
        world.product(a, &admin, "OF-1", 1_299, 5_000)?;
        for _ in 0..4 {
            world.random_action(a, &admin)?;
            world.random_action(b, &admin)?;
        }
        world.crash_at(a, point);
        world.crash_at(b, point);
        // Each till dies at the point in its next round; quiesce restarts them from their
        // files and syncs until every queue is empty and every cursor at the head.
        for t in [a, b] {
            let died = world.sync(t)?.err().ok_or("the till did not die")?;
            assert!(
                died.message.contains("simulated crash"),
                "{point:?}: {died}"
            );
        }
        world.quiesce()?;
        world.check_all()?;
    }
    Ok(())
}

#[test]
fn a_push_held_in_the_network_and_delivered_late_is_stored_once() -> R {
    let mut world = World::builder(9).tenant("caps", 2).build()?;
    let admin = world.admin("caps")?;
    let (a, b) = (world.terminal("caps", 0), world.terminal("caps", 1));
    world.product(a, &admin, "OF-1", 1_299, 5_000)?;
    world.hold(a);
    for _ in 0..5 {
        world.random_action(a, &admin)?;
    }
    // The till times out and sends again; the held copy arrives after that.
    assert!(world.sync(a)?.is_err());
    world.release(a)?;
    world.lose_next_answer(b);
    world.random_action(b, &admin)?;
    world.quiesce()?;
    Ok(world.check_all()?)
}

#[test]
fn a_one_way_partition_still_lets_the_till_pull_and_reports_who_is_behind() -> R {
    let mut world = World::builder(4).tenant("caps", 2).build()?;
    let admin = world.admin("caps")?;
    let (a, b) = (world.terminal("caps", 0), world.terminal("caps", 1));
    world.product(a, &admin, "OF-1", 1_299, 5_000)?;
    world.partition(a, true, false);
    world.random_action(a, &admin)?;
    world.random_action(b, &admin)?;
    let err = world.quiesce().err().ok_or("a cut push cannot quiesce")?;
    let text = err.to_string();
    assert!(
        text.contains("terminal 0") && text.contains("partitioned"),
        "{text}"
    );
    assert!(text.contains("POS_SYNC_SEED=4"), "{text}");
    world.online(a);
    world.quiesce()?;
    Ok(world.check_all()?)
}

#[test]
fn a_till_whose_clock_jumps_a_year_ahead_waits_until_it_is_set_right() -> R {
    const YEAR: i64 = 365 * 24 * 3600 * 1000;
    let mut world = World::builder(8).tenant("caps", 2).build()?;
    let admin = world.admin("caps")?;
    let (a, b) = (world.terminal("caps", 0), world.terminal("caps", 1));
    world.product(a, &admin, "OF-1", 1_299, 5_000)?;
    world.shift_clock(b, YEAR);
    world.random_action(b, &admin)?;
    world.random_action(a, &admin)?;
    assert!(
        world.quiesce().is_err(),
        "a year-ahead stamp must not be taken"
    );
    world.shift_clock(b, -YEAR);
    // Its stamps are still ahead: the operations wait, nothing is lost or set aside.
    let status = world
        .store(b)
        .sync_status(&"caps".parse().map_err(|_| "id")?);
    let status = status.map_err(|e| e.to_string())?;
    assert_eq!(status.set_aside, 0);
    assert!(status.pending > 0 || status.last_error.is_some());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn random_days_with_random_faults_converge(seed in 0u64..1_000_000, actions in 2usize..8) {
        let run = || -> Result<(), KitError> {
            let mut world = busy_day(seed, actions)?;
            world.chaos(Chaos { unavailable: 0.15, timeout: 0.1, lost_answer: 0.1, duplicate: 0.1 });
            let caps = world.terminal("caps", 2);
            world.crash_at(caps, CrashPoint::MergeApplied);
            world.quiesce()?;
            world.check_all()
        };
        if let Err(e) = run() {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
}

#[test]
fn three_tills_and_a_thousand_operations_settle_and_check() -> R {
    let mut world = World::builder(21).tenant("caps", 3).build()?;
    let admin = world.admin("caps")?;
    let tills: Vec<_> = (0..3).map(|n| world.terminal("caps", n)).collect();
    for sku in ["OF-1", "AF-2", "SP-7", "WB-4"] {
        world.product(tills[0], &admin, sku, 700, 50_000)?;
    }
    // About five operations a checkout: a thousand operations in all.
    for round in 0..6 {
        for t in &tills {
            for _ in 0..25 {
                world.random_action(*t, &admin)?;
            }
            if round % 2 == 1 {
                world.sync(*t)?.ok();
            }
        }
    }
    world.quiesce()?;
    world.check_all()?;
    let head = world
        .store(tills[0])
        .sync_status(&"caps".parse().map_err(|_| "id")?)?
        .server_high;
    assert!(head >= 1_000, "{head} operations in the log");
    Ok(())
}

#[cfg(feature = "server")]
#[test]
fn the_same_scenario_over_real_http_on_loopback_converges_with_faults() -> R {
    let mut world = World::builder(13).tenant("caps", 3).http().build()?;
    let admin = world.admin("caps")?;
    let tills: Vec<_> = (0..3).map(|n| world.terminal("caps", n)).collect();
    world.product(tills[0], &admin, "OF-1", 900, 10_000)?;
    world.offline(tills[2]);
    for t in &tills {
        for _ in 0..6 {
            world.random_action(*t, &admin)?;
        }
    }
    world.online(tills[2]);
    world.lose_next_answer(tills[1]);
    world.crash_at(tills[0], CrashPoint::PushAnswered);
    world.quiesce()?;
    Ok(world.check_all()?)
}

#[test]
fn a_terminal_joining_after_a_snapshot_takes_it_and_the_world_converges() -> R {
    use pos_tenancy::sync::{SnapshotUse, SyncOptions};
    let mut world = World::builder(21)
        .tenant("caps", 2)
        .options(SyncOptions::default().snapshot_from(Some(1)))
        .build()?;
    let admin = world.admin("caps")?;
    let first = world.terminal("caps", 0);
    world.product(first, &admin, "OF-1", 500, 2)?;
    let (a, b) = (first, world.terminal("caps", 1));
    world.offline(b);
    for t in [a, b, a, b, a] {
        world.random_action(t, &admin)?;
    }
    world.online(b);
    world.quiesce()?;
    let info = world.snapshot("caps")?;
    world.random_action(a, &admin)?;
    world.quiesce()?;
    let late = world.join("caps")?;
    let report = world.sync(late)??;
    assert!(
        matches!(report.snapshot, Some(SnapshotUse::Taken { cursor, .. }) if cursor == info.cursor),
        "{report:?}"
    );
    world.quiesce()?;
    world.check_all()?;
    assert_eq!(world.dump("caps", late)?, world.dump("caps", a)?);
    Ok(())
}
