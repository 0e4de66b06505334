/**
 * The app's words in French and Arabic. Arabic switches the page to right-to-left; identifiers
 * (plates, codes, hashes) stay left-to-right inside it. Circumstance labels are not here: they
 * come from the server's form versions, which are data.
 */
export type Lang = 'fr' | 'ar';

const WORDS = {
  title: ['Constat amiable', 'المحضر الودي'],
  signIn: ['Se connecter', 'تسجيل الدخول'],
  yourName: ['Votre nom', 'اسمك'],
  signInHint: [
    'Serveur de développement : un jeton de test est délivré pour ce nom.',
    'خادم التطوير: يُمنح رمز اختبار لهذا الاسم.',
  ],
  openSession: ['Ouvrir un constat', 'فتح محضر'],
  formVersion: ['Modèle de formulaire', 'نموذج الاستمارة'],
  joinSession: ['Rejoindre avec un code', 'الانضمام برمز'],
  joinCode: ['Code à 6 chiffres', 'رمز من 6 أرقام'],
  join: ['Rejoindre', 'انضمام'],
  scan: ['Scanner le QR code', 'مسح رمز QR'],
  stopScan: ['Arrêter la caméra', 'إيقاف الكاميرا'],
  scanImage: ['Lire le QR code sur une photo', 'قراءة رمز QR من صورة'],
  noQrInImage: [
    'Aucun code de constat lisible sur cette image.',
    'لا يوجد رمز محضر مقروء في هذه الصورة.',
  ],
  history: ['Mes constats', 'محاضري'],
  more: ['Plus', 'المزيد'],
  none: ['Aucun constat pour le moment.', 'لا توجد محاضر بعد.'],
  showCode: ['Montrez ce code à l’autre conducteur', 'اعرض هذا الرمز على السائق الآخر'],
  youAre: ['Vous êtes le conducteur', 'أنت السائق'],
  here: ['connecté', 'متصل'],
  away: ['absent', 'غير متصل'],
  offline: [
    'Hors ligne : vos modifications sont gardées sur ce téléphone et seront envoyées au retour du réseau.',
    'غير متصل: تُحفظ تعديلاتك على هذا الهاتف وتُرسل عند عودة الشبكة.',
  ],
  reconnecting: ['Connexion perdue, reconnexion…', 'انقطع الاتصال، جارٍ إعادة الاتصال…'],
  refused: ['Le serveur a refusé une modification', 'رفض الخادم تعديلاً'],
  reloadFromServer: ['Recharger depuis le serveur', 'إعادة التحميل من الخادم'],
  closed: ['Connexion fermée par le serveur', 'أغلق الخادم الاتصال'],
  accident: ['Accident', 'الحادث'],
  date: ['Date', 'التاريخ'],
  time: ['Heure', 'الساعة'],
  wilaya: ['Wilaya (01–58)', 'الولاية (01–58)'],
  wilayaWord: ['wilaya', 'ولاية'],
  commune: ['Commune', 'البلدية'],
  address: ['Adresse', 'العنوان'],
  injuries: ['Blessés, même légers', 'جرحى ولو بإصابات خفيفة'],
  injuriesWarning: [
    'Avec des blessés, la police et l’assureur doivent être prévenus.',
    'في حال وجود جرحى يجب إبلاغ الشرطة وشركة التأمين.',
  ],
  otherVehicleDamage: ['Dégâts à d’autres véhicules', 'أضرار بمركبات أخرى'],
  objectDamage: ['Dégâts à des objets', 'أضرار بأشياء'],
  vehicle: ['Véhicule', 'المركبة'],
  mine: ['(le vôtre)', '(مركبتك)'],
  theirs: ['(l’autre conducteur, lecture seule)', '(السائق الآخر، للقراءة فقط)'],
  policyholder: ['Assuré', 'المؤمَّن له'],
  lastName: ['Nom', 'اللقب'],
  firstName: ['Prénom', 'الاسم'],
  phone: ['Téléphone', 'الهاتف'],
  email: ['E-mail', 'البريد الإلكتروني'],
  make: ['Marque, type', 'العلامة والنوع'],
  model: ['Modèle', 'الطراز'],
  plate: ['Immatriculation', 'رقم التسجيل'],
  plateCountry: ['Pays d’immatriculation', 'بلد التسجيل'],
  plateHint: ['Ex. 12345-115-16', 'مثال 12345-115-16'],
  insurer: ['Assureur', 'شركة التأمين'],
  company: ['Société d’assurance', 'شركة التأمين'],
  yes: ['Oui', 'نعم'],
  no: ['Non', 'لا'],
  choose: ['— choisir —', '— اختر —'],
  policyNumber: ['N° de police', 'رقم وثيقة التأمين'],
  validFrom: ['Valable du', 'صالحة من'],
  validTo: ['au', 'إلى'],
  agency: ['Agence', 'الوكالة'],
  driver: ['Conducteur', 'السائق'],
  birthDate: ['Date de naissance', 'تاريخ الميلاد'],
  licenceNumber: ['N° de permis', 'رقم رخصة السياقة'],
  licenceCategory: ['Catégorie', 'الصنف'],
  comingFrom: ['Venant de', 'قادم من'],
  goingTo: ['Allant à', 'متجه إلى'],
  impactPoint: ['Point de choc initial (touchez le véhicule)', 'نقطة الصدمة الأولى (المس المركبة)'],
  visibleDamage: ['Dégâts apparents', 'الأضرار الظاهرة'],
  circumstances: ['Circonstances', 'الظروف'],
  circumstanceCount: ['Nombre de cases cochées', 'عدد الخانات المؤشر عليها'],
  remarks: ['Mes observations', 'ملاحظاتي'],
  sketch: ['Croquis', 'الرسم التخطيطي'],
  toolSelect: ['Déplacer', 'تحريك'],
  toolRoad: ['Route', 'طريق'],
  toolCarA: ['Véhicule A', 'المركبة أ'],
  toolCarB: ['Véhicule B', 'المركبة ب'],
  toolArrow: ['Flèche', 'سهم'],
  toolStroke: ['Trait libre', 'خط حر'],
  toolLabel: ['Texte', 'نص'],
  rotate: ['Tourner', 'تدوير'],
  remove: ['Supprimer', 'حذف'],
  sketchKeys: [
    'Au clavier : les boutons placent l’élément au centre ; dans le croquis, N / P choisit un élément, les flèches le déplacent (Maj : plus loin), R / Maj+R le tourne, Suppr l’efface, Échap désélectionne.',
    'بلوحة المفاتيح: الأزرار تضع العنصر في الوسط؛ داخل الرسم، N / P لاختيار عنصر، الأسهم لتحريكه (Shift: أبعد)، R / Shift+R لتدويره، Delete لحذفه، Escape لإلغاء الاختيار.',
  ],
  nothingSelected: ['Aucun élément choisi', 'لم يتم اختيار أي عنصر'],
  selected: ['Choisi', 'المختار'],
  labelPrompt: ['Texte de l’étiquette', 'نص التسمية'],
  photos: ['Photos', 'الصور'],
  photoKind: ['Type de photo', 'نوع الصورة'],
  takePhoto: ['Prendre une photo', 'التقاط صورة'],
  pickPhoto: ['Choisir une photo', 'اختيار صورة'],
  photosUnavailable: [
    'Ce serveur n’accepte pas encore les photos (pas de requestUpload).',
    'هذا الخادم لا يقبل الصور بعد (لا يوجد requestUpload).',
  ],
  uploading: ['envoi…', 'جارٍ الإرسال…'],
  sign: ['Signature', 'التوقيع'],
  contentHash: ['Empreinte du contenu que vous signez', 'بصمة المحتوى الذي توقع عليه'],
  waitSync: ['En attente de synchronisation…', 'في انتظار المزامنة…'],
  iSign: ['J’ai lu et je signe', 'قرأت وأوقع'],
  signedBy: ['Signé par', 'وقّع'],
  notSigned: ['pas encore signé', 'لم يوقع بعد'],
  voided: ['Le contenu a changé : les signatures sont annulées.', 'تغير المحتوى: أُلغيت التوقيعات.'],
  incomplete: ['Le constat est incomplet :', 'المحضر غير مكتمل:'],
  finalized: ['Constat finalisé', 'تم إنهاء المحضر'],
  constatId: ['N° du constat', 'رقم المحضر'],
  pdf: ['Télécharger le PDF', 'تحميل PDF'],
  pdfPending: ['PDF en préparation…', 'جارٍ إعداد ملف PDF…'],
  back: ['Retour', 'رجوع'],
  timeline: ['Suivi du sinistre', 'متابعة الملف'],
  status: ['Statut', 'الحالة'],
  signOut: ['Se déconnecter', 'تسجيل الخروج'],
  attachmentStatus: ['état', 'الحالة'],
} as const satisfies Record<string, readonly [string, string]>;

export type Word = keyof typeof WORDS;

/** Plate categories (docs/document.md, Plates), by the category digit. */
const PLATE_CATEGORIES: Record<number, readonly [string, string]> = {
  1: ['voiture', 'سيارة سياحية'],
  2: ['camion', 'شاحنة'],
  3: ['camionnette', 'شاحنة صغيرة'],
  4: ['autocar', 'حافلة'],
  5: ['tracteur routier', 'جرار طرقي'],
  6: ['autre tracteur', 'جرار آخر'],
  7: ['véhicule spécial', 'مركبة خاصة'],
  8: ['remorque', 'مقطورة'],
  9: ['motocyclette', 'دراجة نارية'],
};

export function plateCategory(category: number): string {
  const words = PLATE_CATEGORIES[category];
  return words ? words[lang === 'ar' ? 1 : 0] : String(category);
}

let lang: Lang = (localStorage.getItem('constat.lang') as Lang | null) === 'ar' ? 'ar' : 'fr';
const listeners = new Set<() => void>();

export function t(word: Word): string {
  return WORDS[word][lang === 'ar' ? 1 : 0];
}

export function currentLang(): Lang {
  return lang;
}

export function setLang(next: Lang): void {
  lang = next;
  localStorage.setItem('constat.lang', next);
  applyDirection();
  for (const listener of listeners) listener();
}

export function onLangChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function applyDirection(): void {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === 'ar' ? 'rtl' : 'ltr';
}
