//! Word banks for multilingual text. Small, but enough to give the payloads
//! the byte mix of a real stream: ASCII, accented Latin, Cyrillic, Arabic,
//! CJK, Hangul, Thai, Devanagari and emoji (4-byte UTF-8, ZWJ sequences).

pub struct Lang {
    pub code: &'static str,
    pub words: &'static [&'static str],
    /// Whether words are joined by spaces.
    pub spaced: bool,
    /// Relative weight in the stream.
    pub weight: u32,
}

pub const LANGS: &[Lang] = &[
    Lang { code: "en", spaced: true, weight: 32, words: &["the", "stream", "today", "never", "really", "love", "this", "game", "people", "time", "good", "morning", "night", "new", "music", "video", "watch", "follow", "back", "why", "what", "happy", "birthday", "thanks", "everyone", "best", "day", "ever", "can't", "believe", "just", "saw", "amazing", "weekend", "coffee", "work", "again", "world", "news", "live"] },
    Lang { code: "ja", spaced: false, weight: 14, words: &["今日は", "本当に", "ありがとう", "楽しかった", "明日", "ライブ", "最高", "です", "ね", "推し", "かわいい", "おはよう", "ございます", "仕事", "疲れた", "新曲", "発表", "待ってる", "！", "。"] },
    Lang { code: "es", spaced: true, weight: 10, words: &["hoy", "mañana", "gracias", "por", "todo", "qué", "día", "más", "feliz", "cumpleaños", "amigos", "fútbol", "partido", "vamos", "nunca", "siempre", "corazón", "música", "canción", "también"] },
    Lang { code: "pt", spaced: true, weight: 7, words: &["hoje", "amanhã", "obrigado", "você", "não", "saudade", "coração", "jogo", "muito", "bom", "dia", "galera", "festa", "verdade", "então", "ação", "está", "mãe", "pão", "irmão"] },
    Lang { code: "ar", spaced: true, weight: 6, words: &["السلام", "عليكم", "صباح", "الخير", "الله", "اللهم", "يا", "رب", "الحمد", "لله", "جميل", "اليوم", "مساء", "النور", "شكرا", "حب", "قلبي", "دائما", "كل", "عام"] },
    Lang { code: "ko", spaced: true, weight: 5, words: &["오늘", "진짜", "너무", "좋아", "사랑해", "생일", "축하해", "방탄소년단", "컴백", "대박", "감사합니다", "안녕하세요", "내일", "노래", "최고", "우리", "같이", "보고", "싶다", "ㅋㅋㅋ"] },
    Lang { code: "tr", spaced: true, weight: 4, words: &["bugün", "çok", "güzel", "teşekkürler", "maç", "şampiyon", "hayırlı", "cumalar", "iyi", "geceler", "kanka", "değil", "şimdi", "böyle", "ğ", "yarın", "herkese", "günaydın", "sevgi", "için"] },
    Lang { code: "ru", spaced: true, weight: 4, words: &["сегодня", "привет", "спасибо", "очень", "хорошо", "завтра", "музыка", "новости", "люблю", "день", "вечер", "друзья", "всем", "мир", "игра", "почему", "снова", "работа", "утро", "жизнь"] },
    Lang { code: "fr", spaced: true, weight: 4, words: &["aujourd'hui", "merci", "très", "bien", "à", "demain", "été", "où", "ça", "va", "fête", "cœur", "musique", "déjà", "encore", "première", "soirée", "génial", "journée", "voilà"] },
    Lang { code: "th", spaced: false, weight: 3, words: &["วันนี้", "ขอบคุณ", "มาก", "ครับ", "ค่ะ", "น่ารัก", "คิดถึง", "สุขสันต์", "วันเกิด", "เพลง", "ใหม่", "ดี", "จริง", "ๆ", "555"] },
    Lang { code: "hi", spaced: true, weight: 3, words: &["आज", "बहुत", "अच्छा", "धन्यवाद", "नमस्ते", "भारत", "दिन", "खुश", "प्यार", "जीत", "मैच", "शुभ", "प्रभात", "सब", "लोग"] },
    Lang { code: "und", spaced: true, weight: 2, words: &["😂", "❤️", "🔥", "👍", "🙏", "😍", "🎉", "👮‍♀️", "👩‍🚒", "🇧🇷", "🇯🇵", "💯", "✨", "😭", "🥺"] },
];

pub const HASHTAGS: &[&str] = &["MTVHottest", "NowPlaying", "BTS", "FelizDomingo", "Breaking", "Ramadan", "WorldCup", "Bitcoin", "TGIF", "Eurovision", "NBA", "LaLiga", "ThrowbackThursday", "月曜日", "가을", "ClimateAction", "SuperBowl", "Oscars", "jobs", "GameOfThrones"];

pub const PLACES: &[(&str, &str, &str, &str, f64, f64)] = &[
    ("Boulder, CO", "Boulder", "United States", "US", -105.27, 40.01),
    ("Tokyo, Japan", "Tokyo", "Japan", "JP", 139.69, 35.68),
    ("São Paulo, Brasil", "São Paulo", "Brasil", "BR", -46.63, -23.55),
    ("Madrid, España", "Madrid", "España", "ES", -3.70, 40.41),
    ("Istanbul, Türkiye", "Istanbul", "Türkiye", "TR", 28.97, 41.01),
    ("Seoul, Republic of Korea", "Seoul", "Republic of Korea", "KR", 126.97, 37.56),
    ("Riyadh, Kingdom of Saudi Arabia", "Riyadh", "Kingdom of Saudi Arabia", "SA", 46.67, 24.71),
    ("London, England", "London", "United Kingdom", "GB", -0.12, 51.50),
    ("Mumbai, India", "Mumbai", "India", "IN", 72.87, 19.07),
    ("Paris, France", "Paris", "France", "FR", 2.35, 48.85),
];

pub const SOURCES: &[&str] = &[
    "<a href=\"http://twitter.com/download/iphone\" rel=\"nofollow\">Twitter for iPhone</a>",
    "<a href=\"http://twitter.com/download/android\" rel=\"nofollow\">Twitter for Android</a>",
    "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
    "<a href=\"http://twitter.com\" rel=\"nofollow\">Twitter Web Client</a>",
    "<a href=\"https://about.twitter.com/products/tweetdeck\" rel=\"nofollow\">TweetDeck</a>",
    "<a href=\"https://ifttt.com\" rel=\"nofollow\">IFTTT</a>",
];

pub const SYLLABLES: &[&str] = &["ka", "mi", "ro", "sa", "to", "na", "lu", "be", "jo", "ann", "dev", "max", "zen", "kit", "ray", "sol", "vin", "ela", "gus", "pia"];

pub const COLORS: &[&str] = &["1DA1F2", "C0DEED", "F5F8FA", "000000", "FFFFFF", "DDEEF6", "333333", "91D2FA", "F58EA8", "ABB8C2"];

pub const DOMAINS: &[(&str, &str)] = &[
    ("www.nytimes.com", "The New York Times"),
    ("www.youtube.com", "YouTube"),
    ("www.instagram.com", "Instagram"),
    ("www.bbc.co.uk", "BBC News"),
    ("open.spotify.com", "Spotify"),
    ("www.nhk.or.jp", "NHK"),
    ("g1.globo.com", "G1"),
    ("elpais.com", "EL PAÍS"),
];
