//! mbcache levels: the 2.6.10 race in ext2/ext3 xattr block sharing, where one task walks an
//! xattr key with `mb_cache_entry_find_first`/`find_next` while another frees the entry it holds
//! (`mb_cache_entry_get` + `mb_cache_entry_free`), and its 2.6.11 fix (an exclusive get that waits
//! for the walker's shared reference).

use std::sync::Arc;

use mbcache_sim::{bdev_address, Fixes, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};

use super::super::level::{Level, TaskInfo, Win};
use super::super::runtime::{spawn_tasks, Control, TaskBody};
use super::taskstats::level_sim;

/// The xattr hash both blocks share.
const KEY: u32 = 7;
/// The block the walker finds first (the later insert is first on its hash chain).
const FIRST_BLOCK: u64 = 11;

/// The mbcache levels, easiest first.
pub(crate) fn levels() -> Vec<Level> {
    let race = Level {
        name: "mbcache-1",
        subsystem: "mbcache",
        title: "find_next from a freed entry",
        zoo: "exclusive-get",
        fix_on: false,
        kernel: "linux-2.6.11",
        goal: "make find_next follow a freed entry",
        invariant: "an entry a task holds from find_first stays hashed until find_next releases it",
        hint: "let the walker's find_first return, let the unlink get and free that very entry, then \
               let the walker go on to find_next",
        tasks: &TASKS,
        win: Win::Violation(&["list-poison", "wild-pointer", "use-after-free"]),
        setup: xattr_race,
        solution: &[(0, "< mb_cache_entry_find_first"), (1, ""), (0, "")],
    };
    vec![
        race,
        Level {
            name: "mbcache-2",
            title: "convince yourself: the exclusive get",
            fix_on: true,
            goal: "try to make find_next follow a freed entry: every schedule keeps the invariant",
            hint: "mb_cache_entry_get() now waits on mb_cache_queue while find_first's shared \
                   reference is held: the free can only come after find_next has moved on",
            win: Win::Holds,
            solution: &[(0, "< mb_cache_entry_find_first"), (1, ""), (0, ""), (1, "")],
            ..race
        },
    ]
}

const TASKS: [TaskInfo; 2] = [
    TaskInfo { name: "setxattr (walks key 7)", entry: "mb_cache_entry_find_first" },
    TaskInfo { name: "unlink (frees block 11)", entry: "mb_cache_entry_get" },
];

/// Two blocks sharing xattr hash 7; a walker and a task dropping the first block's last user.
fn xattr_race(control: &Arc<Control>, fix_on: bool) {
    let sim = level_sim(2);
    control.publish(&sim);
    let off = if fix_on { vec![] } else { vec!["exclusive-get".to_string()] };
    let fixes = Fixes::parse(Some("linux-2.6.11"), &off).expect("the level's kernel is a preset");
    let registry = Arc::new(Registry::new(&sim, fixes, Waits::Sleep));
    let setup = sim.cx("mount", 0);
    let size = ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE;
    let Ok(cache) = registry.create(&setup, "ext2_xattr", None, size, 1, 2) else { return };
    let bdev = bdev_address(0);
    for block in [10, FIRST_BLOCK] {
        if let Ok(handle) = registry.alloc(&setup, cache) {
            let _ = registry.insert(&setup, &handle, bdev, block, &[KEY]);
            let _ = registry.release(&setup, handle);
        }
    }
    let walker = {
        let (registry, sim) = (registry.clone(), sim.clone());
        move || {
            let cx = sim.cx("setxattr", 0);
            let Ok(Some(first)) = registry.find_first(&cx, cache, 0, bdev, KEY) else { return };
            if let Ok(Some(next)) = registry.find_next(&cx, first, 0, bdev, KEY) {
                let _ = registry.release(&cx, next);
            }
        }
    };
    let releaser = {
        let (registry, sim) = (registry.clone(), sim.clone());
        move || {
            let cx = sim.cx("unlink", 1);
            if let Ok(Some(held)) = registry.get(&cx, cache, bdev, FIRST_BLOCK) {
                let _ = registry.free(&cx, held);
            }
        }
    };
    let tasks = vec![
        TaskBody { daemon: false, body: Box::new(walker) },
        TaskBody { daemon: false, body: Box::new(releaser) },
    ];
    spawn_tasks(control, tasks, || {});
    if let Err(violation) = registry.check_invariants(&setup) {
        sim.report(None, violation);
    }
    let live = registry.entries_live(&setup, cache).unwrap_or_default();
    control.set_state(vec![format!("ext2_xattr: {live} entries live")]);
}
